/**
 * The embedded default dataset, generated on first use.
 *
 * The notebooks and `npm start` call ensureSyntheticDataset: it generates the dataset
 * only when the root holds none, or one made with other options (or by another
 * generator version), as recorded in the root's manifest.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import { datasetLayout, SPLITS } from "./coco-format";
import {
  generateSyntheticDataset,
  readSyntheticManifest,
  syntheticManifest,
  type SyntheticManifest,
  type SyntheticOptions,
  type SyntheticSummary,
} from "./generate";

export interface SyntheticEnsureResult {
  root: string;
  manifest: SyntheticManifest;
  /** True when this call generated the dataset; false when a matching one was already there. */
  generated: boolean;
  /** Timings of the generation, when there was one. */
  summary?: SyntheticSummary;
}

/** Whether two manifests describe the same dataset (all fields, compared as JSON with a fixed key order). */
function sameManifest(a: SyntheticManifest, b: SyntheticManifest): boolean {
  const canonical = (m: SyntheticManifest) =>
    JSON.stringify([m.generator, m.seed, m.splits.train, m.splits.val, m.splits.test, m.imageSize, m.quality]);
  return canonical(a) === canonical(b);
}

/** Make sure `root` holds the synthetic dataset for `options`; generate it if not. */
export async function ensureSyntheticDataset(root: string, options: SyntheticOptions = {}): Promise<SyntheticEnsureResult> {
  root = path.resolve(root);
  const wanted = syntheticManifest(options);
  const existing = await readSyntheticManifest(root);
  // The manifest is written last, but check the annotation files too, in case someone deleted them.
  const filesPresent = SPLITS.every((split) => existsSync(path.join(root, datasetLayout.captions(split))));
  if (existing && filesPresent && sameManifest(existing, wanted)) {
    return { root, manifest: existing, generated: false };
  }
  const summary = await generateSyntheticDataset(root, options);
  return { root, manifest: summary.manifest, generated: true, summary };
}
