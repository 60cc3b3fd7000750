/**
 * Writing the synthetic dataset: scenes → images + COCO caption files under a root.
 *
 * Layout (the same as real COCO, plus the test captions and the ground-truth scenes):
 *   <root>/annotations/captions_{train,val,test}2014.json, image_info_test2014.json,
 *                      scenes_{train,val,test}2014.json
 *   <root>/images/{train,val,test}2014/synthetic_<split>_<6-digit id>.jpg
 *   <root>/synthetic-manifest.json   (the options it was made with; written last)
 *
 * Determinism: each image's scene and captions come from its own random stream, derived
 * from (seed, image id), so the output does not depend on render order or concurrency.
 *
 * Atomicity: everything is written into a hidden temporary folder next to the root,
 * which is renamed into place only when complete. An interrupted run leaves at most a
 * `.<name>.partial-*` folder, never a root that looks complete but is not.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import {
  cocoImage,
  datasetLayout,
  SPLITS,
  SYNTHETIC_GENERATOR_VERSION,
  SYNTHETIC_LICENSES,
  syntheticInfo,
  type CocoAnnotation,
  type CocoCaptionsFile,
  type Split,
} from "./coco-format";
import { describeScene } from "./describe";
import { renderScene } from "./render";
import { sampleScene } from "./sample-scene";
import { imageRandom } from "./streams";
import type { Scene } from "./scene";

/** Images in the default dataset: trains well in a few minutes on 2 CPU cores. */
export const DEFAULT_SYNTHETIC_IMAGES = 3000;
export const DEFAULT_SYNTHETIC_SEED = 1;
export const DEFAULT_SYNTHETIC_IMAGE_SIZE = 96;
export const DEFAULT_SYNTHETIC_JPEG_QUALITY = 90;
export const DEFAULT_SYNTHETIC_FRACTIONS: SyntheticSplitSizes = { train: 0.8, val: 0.1, test: 0.1 };
export const SYNTHETIC_MANIFEST_FILE = "synthetic-manifest.json";

export type SyntheticSplitSizes = Record<Split, number>;

export interface SyntheticOptions {
  /** Seed of all randomness, an integer in [0, 2^32). Default 1. */
  seed?: number;
  /** Images per split. When given, `images` and `fractions` are ignored. */
  splits?: SyntheticSplitSizes;
  /** Total number of images, divided by `fractions`. Default 3000. */
  images?: number;
  /** Share of each split. Default 80/10/10. */
  fractions?: SyntheticSplitSizes;
  /** Image width and height in pixels. Default 96. */
  imageSize?: number;
  /** JPEG quality. Default 90. */
  quality?: number;
  /** Images rendered at once (does not change the output). Default 8. */
  concurrency?: number;
  /** Called after each image is written. */
  onProgress?: (done: number, total: number) => void;
}

/** What a dataset was made with: stored in the manifest, and compared to decide whether to regenerate. */
export interface SyntheticManifest {
  generator: string;
  seed: number;
  splits: SyntheticSplitSizes;
  imageSize: number;
  quality: number;
}

export interface SyntheticSummary {
  root: string;
  manifest: SyntheticManifest;
  images: number;
  captions: number;
  seconds: number;
  imagesPerSecond: number;
}

const fail = (message: string): never => {
  throw new Error(`lib/data/synthetic/generate.ts: ${message}`);
};

/** Split sizes from the options: explicit sizes, or a total divided by fractions (train takes the rounding rest). */
export function syntheticSplitSizes(options: Pick<SyntheticOptions, "splits" | "images" | "fractions"> = {}): SyntheticSplitSizes {
  if (options.splits) {
    for (const split of SPLITS) {
      const n = options.splits[split];
      if (!Number.isInteger(n) || n < 0) fail(`splits.${split} must be a non-negative integer, got ${n}`);
    }
    if (SPLITS.every((s) => options.splits![s] === 0)) fail("splits must hold at least one image");
    return { train: options.splits.train, val: options.splits.val, test: options.splits.test };
  }
  const total = options.images ?? DEFAULT_SYNTHETIC_IMAGES;
  if (!Number.isInteger(total) || total < 1) fail(`images must be a positive integer, got ${total}`);
  const f = options.fractions ?? DEFAULT_SYNTHETIC_FRACTIONS;
  const sum = f.train + f.val + f.test;
  if (SPLITS.some((s) => !(f[s] >= 0)) || Math.abs(sum - 1) > 1e-6) {
    fail(`fractions must be non-negative and sum to 1, got ${JSON.stringify(f)}`);
  }
  const val = Math.round(total * f.val);
  const test = Math.round(total * f.test);
  return { train: total - val - test, val, test };
}

/** The manifest that these options produce (defaults filled in, validated). */
export function syntheticManifest(options: SyntheticOptions = {}): SyntheticManifest {
  const seed = options.seed ?? DEFAULT_SYNTHETIC_SEED;
  const imageSize = options.imageSize ?? DEFAULT_SYNTHETIC_IMAGE_SIZE;
  const quality = options.quality ?? DEFAULT_SYNTHETIC_JPEG_QUALITY;
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) fail(`seed must be an integer in [0, 2^32), got ${seed}`);
  if (!Number.isInteger(imageSize) || imageSize < 16) fail(`imageSize must be an integer of at least 16, got ${imageSize}`);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) fail(`quality must be an integer in 1..100, got ${quality}`);
  return { generator: SYNTHETIC_GENERATOR_VERSION, seed, splits: syntheticSplitSizes(options), imageSize, quality };
}

/** One image of the dataset, before rendering. */
interface Item {
  split: Split;
  scene: Scene;
  captions: string[];
}

/** All scenes and captions. Image ids run 1..N across the splits (train, then val, then test), so they are unique. */
function planItems(manifest: SyntheticManifest): Item[] {
  const items: Item[] = [];
  let imageId = 0;
  for (const split of SPLITS) {
    for (let i = 0; i < manifest.splits[split]; i++) {
      imageId++;
      const scene = sampleScene(imageRandom(manifest.seed, imageId, "scene"), imageId);
      const captions = describeScene(scene, imageRandom(manifest.seed, imageId, "captions"));
      items.push({ split, scene, captions });
    }
  }
  return items;
}

/** Run `task` on every item with at most `limit` running at once; the first error stops new tasks and is rethrown after all settle. */
async function forEachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await task(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (rejected) throw rejected.reason;
}

/** Write the annotation files of every split, then the manifest (the last file: its presence means "complete"). */
async function writeAnnotations(dir: string, manifest: SyntheticManifest, items: Item[]): Promise<number> {
  const info = syntheticInfo(manifest.seed);
  let annotationId = 0;
  for (const split of SPLITS) {
    const splitItems = items.filter((item) => item.split === split);
    const images = splitItems.map((item) => cocoImage(split, item.scene.imageId, manifest.imageSize));
    const annotations: CocoAnnotation[] = splitItems.flatMap((item) =>
      item.captions.map((caption) => ({ id: ++annotationId, image_id: item.scene.imageId, caption })),
    );
    const captionsFile: CocoCaptionsFile = { info, licenses: SYNTHETIC_LICENSES, images, annotations };
    await fs.writeFile(path.join(dir, datasetLayout.captions(split)), JSON.stringify(captionsFile));
    if (split === "test") {
      const imageInfo: CocoCaptionsFile = { info, licenses: SYNTHETIC_LICENSES, images };
      await fs.writeFile(path.join(dir, datasetLayout.testImageInfo), JSON.stringify(imageInfo));
    }
    await fs.writeFile(path.join(dir, datasetLayout.scenes(split)), JSON.stringify({ scenes: splitItems.map((item) => item.scene) }));
  }
  await fs.writeFile(path.join(dir, SYNTHETIC_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return annotationId;
}

/** The manifest of the dataset at `root`, or null when there is none (or it cannot be read). */
export async function readSyntheticManifest(root: string): Promise<SyntheticManifest | null> {
  try {
    return JSON.parse(await fs.readFile(path.join(root, SYNTHETIC_MANIFEST_FILE), "utf8")) as SyntheticManifest;
  } catch {
    return null;
  }
}

/** Refuse to replace a folder that is neither missing, empty, nor a synthetic dataset: it may hold someone's data. */
async function assertReplaceable(root: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (entries.length > 0 && !entries.includes(SYNTHETIC_MANIFEST_FILE)) {
    fail(`refusing to overwrite ${root}: it is not empty and holds no ${SYNTHETIC_MANIFEST_FILE}, so it is not a synthetic dataset`);
  }
}

/** Move the finished folder `ready` to `root`, replacing what was there. */
async function swapInto(ready: string, root: string): Promise<void> {
  await assertReplaceable(root);
  const old = `${ready}.old`;
  const hadOld = await fs.rename(root, old).then(
    () => true,
    (error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? false : Promise.reject(error)),
  );
  await fs.rename(ready, root);
  if (hadOld) await fs.rm(old, { recursive: true, force: true });
}

/** Generate the dataset at `root` (replacing an older synthetic dataset there). */
export async function generateSyntheticDataset(root: string, options: SyntheticOptions = {}): Promise<SyntheticSummary> {
  const started = performance.now();
  const manifest = syntheticManifest(options);
  root = path.resolve(root);
  await assertReplaceable(root);
  await fs.mkdir(path.dirname(root), { recursive: true });
  const temp = await fs.mkdtemp(path.join(path.dirname(root), `.${path.basename(root)}.partial-`));
  try {
    await fs.chmod(temp, 0o755); // mkdtemp makes it private (0700); the dataset is not
    await fs.mkdir(path.join(temp, "annotations"));
    for (const split of SPLITS) await fs.mkdir(path.join(temp, datasetLayout.imageDir(split)), { recursive: true });
    const items = planItems(manifest);
    let done = 0;
    await forEachLimited(items, options.concurrency ?? 8, async ({ split, scene }) => {
      const bytes = await renderScene(scene, { size: manifest.imageSize, quality: manifest.quality });
      const image = cocoImage(split, scene.imageId, manifest.imageSize);
      await fs.writeFile(path.join(temp, datasetLayout.imageDir(split), image.file_name), bytes);
      options.onProgress?.(++done, items.length);
    });
    const captions = await writeAnnotations(temp, manifest, items);
    await swapInto(temp, root);
    const seconds = (performance.now() - started) / 1000;
    return { root, manifest, images: items.length, captions, seconds, imagesPerSecond: items.length / seconds };
  } catch (error) {
    await fs.rm(temp, { recursive: true, force: true });
    throw error;
  }
}
