/**
 * Generate the synthetic COCO-format dataset.
 *
 *   npm run data:synthetic -- [--out data/synthetic] [--images 3000] [--seed 1]
 *                             [--splits TRAIN,VAL,TEST] [--size 96] [--quality 90] [--concurrency 8]
 *
 * --images N splits N images 80/10/10; --splits gives the three sizes directly.
 * Always regenerates (use ensureSyntheticDataset from the library to generate only when missing).
 */
import { parseArgs } from "node:util";
import { SingleBar } from "cli-progress";
import {
  DEFAULT_SYNTHETIC_IMAGE_SIZE,
  DEFAULT_SYNTHETIC_IMAGES,
  DEFAULT_SYNTHETIC_JPEG_QUALITY,
  DEFAULT_SYNTHETIC_SEED,
  generateSyntheticDataset,
  type SyntheticOptions,
} from "../lib/data/synthetic";

const USAGE = "usage: npm run data:synthetic -- [--out DIR] [--images N] [--seed S] [--splits TRAIN,VAL,TEST] [--size PX] [--quality Q] [--concurrency C]";

/** A whole number from a flag, or an error naming the flag. */
function integer(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`scripts/generate-synthetic.ts: --${flag} must be an integer, got "${value}"\n${USAGE}`);
  return n;
}

function parseSplits(value: string): SyntheticOptions["splits"] {
  const parts = value.split(",").map(Number);
  if (parts.length !== 3 || !parts.every(Number.isInteger)) {
    throw new Error(`scripts/generate-synthetic.ts: --splits must be three integers TRAIN,VAL,TEST, got "${value}"\n${USAGE}`);
  }
  return { train: parts[0], val: parts[1], test: parts[2] };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "data/synthetic" },
      images: { type: "string" },
      seed: { type: "string" },
      splits: { type: "string" },
      size: { type: "string" },
      quality: { type: "string" },
      concurrency: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const bar = process.stdout.isTTY ? new SingleBar({ format: "rendering {bar} {value}/{total} images | {eta}s left" }) : null;
  const options: SyntheticOptions = {
    seed: integer("seed", values.seed, DEFAULT_SYNTHETIC_SEED),
    images: integer("images", values.images, DEFAULT_SYNTHETIC_IMAGES),
    splits: values.splits === undefined ? undefined : parseSplits(values.splits),
    imageSize: integer("size", values.size, DEFAULT_SYNTHETIC_IMAGE_SIZE),
    quality: integer("quality", values.quality, DEFAULT_SYNTHETIC_JPEG_QUALITY),
    concurrency: integer("concurrency", values.concurrency, 8),
    onProgress: bar ? (done, total) => (done === 1 ? bar.start(total, done) : bar.update(done)) : undefined,
  };
  const summary = await generateSyntheticDataset(values.out!, options);
  bar?.stop();
  const { splits, seed, imageSize } = summary.manifest;
  console.log(
    `synthetic dataset at ${summary.root}: ${summary.images} images (train ${splits.train}, val ${splits.val}, test ${splits.test}), ` +
      `${summary.captions} captions, ${imageSize}x${imageSize}, seed ${seed}; ` +
      `${summary.seconds.toFixed(1)} s, ${summary.imagesPerSecond.toFixed(0)} images/s`,
  );
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
