/**
 * The `data_parallel` figures: the `train_step` configuration's decoder step (batch 32 × 13
 * tokens, vocabulary 8,900, embed and hidden 512; the image embedding a given tensor) on W threads
 * (lib/train/data-parallel.ts), against the single-thread step (trainStep, W = 1) timed
 * interleaved in the same run. One line per W: `ms` (median wall time of a step), `single_ms`,
 * `speedup` = single_ms / ms, and `cores`, the machine's. A W above the core count shows the
 * overhead of the threads and the copies, since no more arithmetic can run at once. `cpu_ms` and
 * `single_cpu_ms` are the process's CPU time per step, all threads together: their ratio is the
 * work the threads add (copies, a second copy of the decoder's ops), which holds however busy the
 * machine is, where wall time on a shared machine depends on the cores the other jobs leave free.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendKind } from "../../lib/runtime/backend";
import { coreCount } from "../../lib/runtime/worker-pool";
import { DecoderRNN } from "../../lib/model/decoder";
import { trainStep } from "../../lib/model/train-step";
import { DataParallel } from "../../lib/train/data-parallel";
import { CLIP_NORM, ORIGINAL_CONFIG } from "./train-step";
import { interleavedAsync, round, type Timing } from "./timing";

/** Worker counts to time by default: 2 up to the cores, and one more than the cores. */
export function defaultWorkerCounts(cores = coreCount()): number[] {
  const counts = new Set<number>();
  for (let w = 2; w <= Math.max(2, cores); w++) counts.add(w);
  counts.add(Math.max(2, cores) + 1);
  return [...counts];
}

export async function benchDataParallel(backend: string, kind: BackendKind, repeats: number, counts = defaultWorkerCounts()): Promise<Record<string, unknown>[]> {
  const { batch, length, vocab, embed, hidden } = ORIGINAL_CONFIG;
  const config = { vocabSize: vocab, embedSize: embed, hiddenSize: hidden, numLayers: 1, dropout: 0 };
  const decoder = new DecoderRNN(config);
  const { images, tokens, mask } = tf.tidy(() => {
    const words = tf.randomUniform([batch, length - 2], 3, vocab, "int32", 7);
    const tokens = tf.concat([tf.zeros([batch, 1], "int32"), words, tf.ones([batch, 1], "int32")], 1) as tf.Tensor2D;
    return { images: tf.randomNormal([batch, embed], 0, 1, "float32", 8) as tf.Tensor2D, tokens, mask: tf.onesLike(tokens).toFloat() as tf.Tensor2D };
  });
  const optimizer = tf.train.adam(1e-3);
  const params = { decoder, embedImages: () => tf.clone(images), tokens, mask, optimizer, clipNorm: CLIP_NORM };
  const pools = [];
  for (const w of counts) pools.push(await DataParallel.start(w, decoder, kind));
  let times: Timing[];
  try {
    times = await interleavedAsync([() => trainStep(params), ...pools.map((dp) => () => dp.step(params))], repeats);
  } finally {
    await Promise.all(pools.map((dp) => dp.close()));
    tf.dispose([images, tokens, mask]);
    optimizer.dispose();
    decoder.dispose();
  }
  const [single, ...onWorkers] = times;
  return counts.map((workers, i) => {
    const { ms, cpuMs } = onWorkers[i];
    return {
      name: "data_parallel",
      backend,
      workers,
      cores: coreCount(),
      config: { ...ORIGINAL_CONFIG, layers: 1 },
      ms: round(ms),
      single_ms: round(single.ms),
      speedup: round(single.ms / ms, 2),
      cpu_ms: round(cpuMs),
      single_cpu_ms: round(single.cpuMs),
    };
  });
}
