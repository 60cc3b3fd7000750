/**
 * A dataset, split by split: the captions (or, for COCO's test split, only the image list), and
 * for the synthetic scenes also the ground truth of each image. Two layouts are read: COCO's
 * (MS COCO and the synthetic scenes) and Flickr8k's (flickr8k.ts), whichever is at the root.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { cocoPaths, loadCaptions, loadTestImageInfo, type CocoCaptionIndex, type Split } from "./coco";
import type { Scene } from "./synthetic/scene";
import { readJson } from "../io/json-file";
import { isFlickr8k, loadFlickr8kSplit, type Warn } from "./flickr8k";

export interface SplitData {
  split: Split;
  /** Images and captions; COCO's test split has images only (captions empty). */
  index: CocoCaptionIndex;
  /** Ground-truth scenes (synthetic data only). */
  scenes?: Scene[];
}

/**
 * Loads one split of the dataset at `root`. `warn` hears what was odd in the files but not fatal
 * (Flickr8k's known quirks); by default such lines go to the console.
 */
export async function loadSplit(root: string, split: Split, warn: Warn = (m) => console.warn(m)): Promise<SplitData> {
  if (isFlickr8k(root)) return { split, index: loadFlickr8kSplit(root, split, warn) };
  const paths = cocoPaths(root);
  const index = await loadSplitIndex(paths, split);
  const scenesFile = path.join(paths.root, "annotations", `scenes_${split}2014.json`);
  const scenes = fs.existsSync(scenesFile) ? ((readJson(scenesFile) as { scenes: Scene[] }).scenes) : undefined;
  return { split, index, scenes };
}

async function loadSplitIndex(paths: ReturnType<typeof cocoPaths>, split: Split): Promise<CocoCaptionIndex> {
  // The synthetic set has captions for its test images too; COCO publishes only the image list.
  if (split === "test" && fs.existsSync(paths.testCaptions)) return loadCaptions(paths.testCaptions, paths.images.test);
  if (split === "test") {
    const info = await loadTestImageInfo(paths.annotations.test, paths.images.test);
    return { ...info, captions: [], captionsByImageId: new Map(info.images.map((image) => [image.id, []])) };
  }
  const file = paths.annotations[split];
  if (!fs.existsSync(file)) {
    throw new Error(`${file}: file not found (run \`npm run data:coco\` for COCO, or \`npm run data:synthetic\`)`);
  }
  return loadCaptions(file, paths.images[split]);
}

/** The (image, caption) pairs of a split, as the loader takes them. */
export function captionPairs(data: SplitData): { imageId: number; caption: string }[] {
  return data.index.captions.map((c) => ({ imageId: c.image_id, caption: c.caption }));
}

/** Each image's reference captions, as text: image id → captions. */
export function captionsByImage(data: SplitData): Map<number, string[]> {
  return new Map([...data.index.captionsByImageId].map(([id, captions]) => [id, captions.map((c) => c.caption)]));
}
