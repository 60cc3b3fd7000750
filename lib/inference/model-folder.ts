/**
 * A model folder: a trained captioner packed to ship, with everything it needs to caption a
 * photo offline, in git-friendly sizes (models/flickr8k-mobilenet/ is one):
 *
 *   README.md              the model card: data, recipe, scores, licences, how to retrain it
 *   backbone/              the frozen CNN as a tfjs layers model (model.json + shards)
 *   captioner/             a checkpoint of the rest: checkpoint.json (config), vocabulary.json,
 *                          weights.json + shards (the embedding, batch norm, LSTM, output layer)
 *
 * Weights are quantised (quantize.ts) and cut into shards under 5 MB. `Captioner.load` takes
 * the folder as it takes a checkpoint; its config names the backbone by the relative path
 * "backbone", resolved against the folder wherever it lies.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { ModelConfig } from "../model/model-config";
import { readCheckpointMeta, resolveCheckpoint, type CheckpointMeta } from "../io/checkpoint";
import { readJson, writeJsonAtomically } from "../io/json-file";
import { fileSystemHandler, modelJsonFormat } from "../io/model-cache";
import { projectPath } from "../runtime/paths";
import { encodeQuantized, shard, type Quantization } from "../io/quantize";
import { loadTensors, type NamedTensor } from "../io/weights-io";

/** The captioner that ships with the project: Flickr8k, MobileNet V1 0.75 (its README is the model card). */
export const SHIPPED_MODEL = projectPath("models", "flickr8k-mobilenet");

const BACKBONE = "backbone";
const CAPTIONER = "captioner";

/** card.json beside a model card: what the card states, machine-readable (the tests check it). */
export interface ModelCard {
  /** The decoding the card recommends, chosen on the dev split: beam search, and whether captions may end on "a", "the"... */
  beam: { size: number; alpha: number; noDanglingEnd?: boolean };
  /** Scores on the test split by decoder ("greedy", "beam3"), metric → value. */
  test: Record<string, Record<string, number>>;
}

export function readModelCard(dir: string): ModelCard {
  return readJson(path.join(dir, "card.json")) as ModelCard;
}

/** Whether a model folder has its card.json (a folder just packed has none until it is evaluated). */
export function hasModelCard(dir: string): boolean {
  return fs.existsSync(path.join(dir, "card.json"));
}

/** Is `dir` a model folder (rather than a checkpoint or run folder)? */
export function isModelFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, CAPTIONER, "checkpoint.json")) && fs.existsSync(path.join(dir, BACKBONE, "model.json"));
}

/** The checkpoint inside a model folder, and its config with the backbone's path made absolute. */
export function modelFolderParts(dir: string): { checkpoint: string; config: ModelConfig } {
  const checkpoint = path.join(dir, CAPTIONER);
  const config = readCheckpointMeta<ModelConfig>(checkpoint).config;
  if (config.encoder.kind !== "pretrained") throw new Error(`${checkpoint}/checkpoint.json: a model folder holds a pretrained backbone`);
  const backbone = { ...config.encoder.backbone, source: path.resolve(dir, config.encoder.backbone.source) };
  return { checkpoint, config: { ...config, encoder: { kind: "pretrained", backbone } } };
}

export interface PackOptions {
  /** A checkpoint, or a run folder (its best checkpoint by val CIDEr). */
  checkpoint: string;
  /** The folder of the backbone the checkpoint was trained with (a tfjs layers model). */
  backboneDir: string;
  out: string;
  quantization: { backbone: Quantization; captioner: Quantization };
}

/** Writes a model folder (without its README) from a training checkpoint; returns each file's size in bytes. */
export async function packModel(opts: PackOptions): Promise<Record<string, number>> {
  const source = resolveCheckpoint(opts.checkpoint, "best");
  const meta = readCheckpointMeta<ModelConfig>(source);
  const { encoder } = meta.config;
  if (encoder.kind !== "pretrained") throw new Error(`${source}: only a model with a pretrained backbone can be packed`);
  fs.mkdirSync(path.join(opts.out, CAPTIONER), { recursive: true });
  fs.mkdirSync(path.join(opts.out, BACKBONE), { recursive: true });
  await packBackbone(opts.backboneDir, path.join(opts.out, BACKBONE), opts.quantization.backbone);
  const backbone = { ...encoder.backbone, name: `${encoder.backbone.name}_${opts.quantization.backbone}`, source: BACKBONE };
  await packCaptioner(source, { ...meta, config: { ...meta.config, encoder: { kind: "pretrained", backbone }, wordLoss: 0 } }, path.join(opts.out, CAPTIONER), opts.quantization);
  return fileSizes(opts.out);
}

/** The backbone's model.json with its weights quantised and re-sharded. */
async function packBackbone(from: string, to: string, quantization: Quantization): Promise<void> {
  const modelJson = readJson(path.join(from, "model.json")) as tf.io.ModelJSON;
  if (modelJsonFormat(from) !== "layers") throw new Error(`${from}/model.json: only a layers model can be packed as the backbone`);
  const artifacts = await fileSystemHandler(from).load!();
  const weights = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
  const tensors = Object.entries(weights).map(([name, tensor]) => ({ name, tensor }));
  const manifest = await writeShards(to, "group1-shard", tensors, quantization);
  tf.dispose(Object.values(weights));
  writeJsonAtomically(path.join(to, "model.json"), { ...modelJson, weightsManifest: manifest }, 0);
}

/** The checkpoint's weights (without the optimizer's), quantised, under `meta` (whose config points at ../backbone). */
async function packCaptioner(from: string, meta: CheckpointMeta<ModelConfig>, to: string, quantization: PackOptions["quantization"]): Promise<void> {
  const weights = await loadTensors(from, "weights");
  // The word-presence head only helps training; captions never use it.
  const tensors = Object.entries(weights).filter(([name]) => !name.startsWith("word_presence/")).map(([name, tensor]) => ({ name, tensor }));
  const manifest = await writeShards(to, "weights-shard", tensors, quantization.captioner);
  tf.dispose(Object.values(weights));
  writeJsonAtomically(path.join(to, "weights.json"), { format: "tfjs-weights", weightsManifest: manifest }, 1);
  fs.copyFileSync(path.join(from, "vocabulary.json"), path.join(to, "vocabulary.json"));
  writeJsonAtomically(path.join(to, "checkpoint.json"), { ...meta, state: { packedFrom: from, quantization } });
}

async function writeShards(dir: string, prefix: string, tensors: NamedTensor[], quantization: Quantization): Promise<tf.io.WeightsManifestConfig> {
  const { data, specs } = await encodeQuantized(tensors, quantization);
  const shards = shard(data, prefix);
  for (const s of shards) fs.writeFileSync(path.join(dir, s.name), s.bytes);
  return [{ paths: shards.map((s) => s.name), weights: specs }];
}

function fileSizes(dir: string, prefix = ""): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = path.join(prefix, entry.name);
    if (entry.isDirectory()) Object.assign(out, fileSizes(path.join(dir, entry.name), rel));
    else out[rel] = fs.statSync(path.join(dir, entry.name)).size;
  }
  return out;
}

/**
 * Where a model's checkpoint is: a model folder's captioner/, or in a run folder its best
 * checkpoint by val CIDEr (its latest when it has none), or a checkpoint folder itself.
 */
export function modelCheckpoint(where: string): string {
  return isModelFolder(where) ? path.join(where, CAPTIONER) : resolveCheckpoint(where, "best");
}

/**
 * A warning for a model that cannot describe photos: one trained on the synthetic scenes knows
 * only coloured shapes, and calls any photo "a small orange triangle ...". Undefined otherwise.
 */
export function photoWarning(checkpointDir: string): string | undefined {
  const { dataset } = readCheckpointMeta<{ dataset?: string }>(checkpointDir).config;
  if (dataset !== "synthetic") return undefined;
  return (
    `note: ${checkpointDir} was trained on the synthetic scenes: it knows only coloured shapes and describes any photo as shapes. ` +
    `For photos, use the captioner that ships in ${path.relative(process.cwd(), SHIPPED_MODEL) || SHIPPED_MODEL} (the default without --checkpoint).`
  );
}
