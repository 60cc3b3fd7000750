/**
 * What `npm run data:flickr8k` fetches, into the layout lib/data/flickr8k.ts reads, with the
 * machinery of `data:coco` (coco-download.ts: resumable, retried, CRC-checked, skipped once done):
 *
 *   <root>/Flickr8k.token.txt, Flickr_8k.{train,dev,test}Images.txt, ...   (Flickr8k_text.zip)
 *   <root>/Flicker8k_Dataset/*.jpg                                          (Flickr8k_Dataset.zip)
 *
 * The default base URL is the mirror that most tutorials use (Jason Brownlee's GitHub release);
 * the dataset's own site hands out links by form only. Its terms allow research and teaching use.
 */
import type { PartSpec } from "./coco-download";

export const FLICKR8K_BASE_URL = "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/";

/**
 * The two archives. The mirror publishes no sizes or checksums, so none are pinned: the zip's
 * own CRC-32s check what is extracted. Extracted sizes are estimates, rounded up.
 */
export const FLICKR8K_PARTS: PartSpec[] = [
  { name: "text", zips: [{ path: "Flickr8k_text.zip", extractTo: ".", extractedSize: 10_000_000 }] },
  {
    name: "images",
    zips: [{ path: "Flickr8k_Dataset.zip", extractTo: ".", topDir: "Flicker8k_Dataset", extractedSize: 1_200_000_000 }],
  },
];
