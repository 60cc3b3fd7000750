/**
 * The entry of a data-parallel training worker (data-parallel.ts starts it, one per extra core):
 * its own tfjs with the project's backend set-up (lib/runtime/backend.ts, which registers the
 * project's wasm kernels), a copy of the decoder, and a loop answering one request per step:
 * read the newest weights from the shared buffer, run the decoder on this worker's shard of the
 * batch, write the gradients into this worker's shared buffer and return the shard's loss and
 * the gradient of its image embedding rows. A cross-entropy shard runs lib/model/shard-step.ts;
 * a self-critical one self-critical-shard.ts, with the vocabulary and the reward's references
 * that a "self-critical-setup" request sent once, when the phase began.
 */
import type { TransferListItem } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import { initBackend, type BackendKind } from "../runtime/backend";
import { serveRequests } from "../runtime/worker-pool";
import { DecoderRNN, type DecoderConfig } from "../model/decoder";
import { decoderShardGradients } from "../model/shard-step";
import { readShared, writeShared, type SharedLayout } from "../runtime/shared-tensors";
import { Vocabulary, type VocabularyJSON } from "../data/vocabulary";
import { CiderReward } from "./cider-reward";
import { selfCriticalShardGradients, type SelfCriticalShard } from "./self-critical-shard";

export interface StepWorkerData {
  index: number;
  backend: BackendKind;
  decoder: DecoderConfig;
  layout: SharedLayout;
  /** The decoder's weights, written by the main thread before each step. */
  weights: SharedArrayBuffer;
  /** This worker's gradients, in the same layout. */
  grads: SharedArrayBuffer;
}

/** A cross-entropy shard: see DecoderShard (lib/model/shard-step.ts). */
export interface CrossEntropyRequest {
  kind: "cross-entropy";
  /** Which weights are in the shared buffer: reloaded when it changes. */
  version: number;
  embedding: Float32Array;
  tokens: Int32Array;
  mask: Float32Array;
  rows: number;
  length: number;
  offset: number;
  total: number;
  tokenCount: number;
  dropoutSeed?: number;
}

export interface CrossEntropyReply {
  loss: number;
  embeddingGrad: Float32Array;
}

/** Sent once, when the self-critical phase begins: what sampling and the reward need. */
export interface SelfCriticalSetupRequest {
  kind: "self-critical-setup";
  vocabulary: VocabularyJSON;
  /** The training split's reference captions by image id (CiderReward's input). */
  references: [number, string[]][];
}

/** A self-critical shard (SelfCriticalShard, self-critical-shard.ts), its embedding as plain numbers. */
export type SelfCriticalRequest = Omit<SelfCriticalShard, "embedding"> & {
  kind: "self-critical";
  version: number;
  /** [images, embed] */
  embedding: Float32Array;
};

export interface SelfCriticalReply {
  loss: number;
  embeddingGrad: Float32Array;
  rewards: number[];
  baselines: number[];
  advantages: number[];
}

export type StepRequest = CrossEntropyRequest | SelfCriticalSetupRequest | SelfCriticalRequest;

interface State {
  data: StepWorkerData;
  decoder: DecoderRNN;
  version: number;
  selfCritical?: { vocab: Vocabulary; reward: CiderReward };
}

type Handled = { result: unknown; transfer?: TransferListItem[] };

serveRequests<State>(
  async (raw) => {
    const data = raw as StepWorkerData;
    await initBackend({ force: data.backend, log: () => {} });
    const decoder = new DecoderRNN(data.decoder, { name: `worker${data.index}/decoder` });
    return { data, decoder, version: -1 };
  },
  async (state, raw) => {
    const request = raw as StepRequest;
    if (request.kind === "cross-entropy") return crossEntropyShard(state, request);
    if (request.kind === "self-critical-setup") {
      const vocab = Vocabulary.fromJSON(request.vocabulary, "the main thread's vocabulary");
      state.selfCritical = { vocab, reward: new CiderReward(new Map(request.references)) };
      return { result: null };
    }
    if (request.kind === "self-critical") return selfCriticalShard(state, request);
    throw new Error(`step-worker.ts: unknown request ${JSON.stringify((request as { kind: unknown }).kind)}`);
  },
);

function crossEntropyShard(state: State, request: CrossEntropyRequest): Handled {
  loadWeights(state, request.version);
  const { rows, length, embedding, tokens, mask } = request;
  const embed = state.data.decoder.embedSize;
  const inputs = {
    embedding: tf.tensor2d(embedding, [rows, embed]),
    tokens: tf.tensor2d(tokens, [rows, length], "int32"),
    mask: tf.tensor2d(mask, [rows, length]),
  };
  try {
    const out = decoderShardGradients(state.decoder, {
      ...inputs,
      rows: { offset: request.offset, total: request.total },
      tokenCount: request.tokenCount,
      dropoutSeed: request.dropoutSeed,
    });
    try {
      writeShared(state.data.grads, state.data.layout, out.grads);
      const embeddingGrad = new Float32Array(out.embeddingGrad.dataSync() as Float32Array); // a copy of our own, to transfer
      const reply: CrossEntropyReply = { loss: out.loss, embeddingGrad };
      return { result: reply, transfer: [embeddingGrad.buffer] };
    } finally {
      tf.dispose([...out.grads, out.embeddingGrad]);
    }
  } finally {
    tf.dispose(Object.values(inputs));
  }
}

function selfCriticalShard(state: State, request: SelfCriticalRequest): Handled {
  if (!state.selfCritical) throw new Error("step-worker.ts: a self-critical shard before the self-critical setup");
  loadWeights(state, request.version);
  const embedding = tf.tensor2d(request.embedding, [request.imageIds.length, state.data.decoder.embedSize]);
  try {
    const { vocab, reward } = state.selfCritical;
    const out = selfCriticalShardGradients(state.decoder, vocab, reward, { ...request, embedding });
    try {
      writeShared(state.data.grads, state.data.layout, out.grads);
      const embeddingGrad = new Float32Array(out.embeddingGrad.dataSync() as Float32Array);
      const reply: SelfCriticalReply = { loss: out.loss, embeddingGrad, rewards: out.rewards, baselines: out.baselines, advantages: out.advantages };
      return { result: reply, transfer: [embeddingGrad.buffer] };
    } finally {
      tf.dispose([...out.grads, out.embeddingGrad]);
    }
  } finally {
    embedding.dispose();
  }
}

/** Reads the weights from the shared buffer into the decoder when they are newer than its own. */
function loadWeights(state: State, version: number): void {
  if (state.version === version) return;
  state.decoder.variables.forEach((v, i) => {
    const t = readShared(state.data.weights, state.data.layout, i);
    v.assign(t);
    t.dispose();
  });
  state.version = version;
}
