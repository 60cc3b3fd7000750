/**
 * Reference captions for `npm run eval`, read as the official COCO evaluation reads them.
 *
 * The training loader (lib/data/coco.ts) insists on everything training needs: each image's
 * file_name, width and height, and no empty caption. The evaluation needs only image ids
 * and captions, and pycocotools' COCO() accepts much less than training does: many
 * third-party reference files (Karpathy-split ones, say) have images with an id and
 * nothing else. So this reader asks only for
 *
 *     { "images":      [{ "id": 391895 }, ...],
 *       "annotations": [{ "image_id": 391895, "caption": "A man with a red helmet ..." }, ...] }
 *
 * as the official loader does: other fields are ignored, an empty caption is a reference
 * like any other (its tokens are none), and captions of images that "images" does not list
 * are never scored (a result for such an image is refused, as the official tool refuses it).
 */
import * as fs from "node:fs";
import { checkEntries, isId, parseRoot, type FieldRule } from "../../data/coco";

/** What an entry of "images" needs for the evaluation. */
const IMAGE_FIELDS: FieldRule[] = [["id", isId, "a non-negative integer"]];

/** What an entry of "annotations" needs for the evaluation: an empty caption is allowed. */
const CAPTION_FIELDS: FieldRule[] = [
  ["image_id", isId, "a non-negative integer"],
  ["caption", (value) => typeof value === "string", "a string"],
];

/**
 * The reference captions of a COCO captions file's JSON text (`file` names it in errors):
 * image id (as a string) → its captions in file order, for the images listed in "images",
 * in that order. Images without captions are left out.
 */
export function parseReferenceCaptions(text: string, file: string): Map<string, string[]> {
  const root = parseRoot(text, file);
  const images = checkEntries<{ id: number }>(root, "images", IMAGE_FIELDS, file);
  const annotations = checkEntries<{ image_id: number; caption: string }>(root, "annotations", CAPTION_FIELDS, file);
  const captions = new Map<number, string[]>(images.map((image) => [image.id, []]));
  for (const { image_id: imageId, caption } of annotations) captions.get(imageId)?.push(caption);
  const refs = new Map<string, string[]>();
  for (const [imageId, list] of captions) if (list.length > 0) refs.set(String(imageId), list);
  return refs;
}

/** Reads a COCO captions file's reference captions (see parseReferenceCaptions). */
export function readReferenceCaptions(file: string): Map<string, string[]> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`${file}: cannot read: ${(error as Error).message}`);
  }
  return parseReferenceCaptions(text, file);
}
