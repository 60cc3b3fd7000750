/**
 * Flickr8k (Hodosh, Young and Hockenmaier, 2013): 8,091 Flickr photos of everyday scenes, five
 * captions each, split 6,000 / 1,000 / 1,000 (train / dev / test). The real dataset that
 * courses train on without a GPU.
 *
 * Two layouts are read, as they are found on people's disks:
 *
 *   the official zips                         the common "captions.txt" variant (Kaggle)
 *     Flickr8k.token.txt                        captions.txt        CSV, header `image,caption`
 *     Flickr_8k.trainImages.txt                 Images/
 *     Flickr_8k.devImages.txt
 *     Flickr_8k.testImages.txt
 *     Flicker8k_Dataset/ (or images/, Images/)
 *
 * `Flickr8k.token.txt` has lines `IMAGE.jpg#N<TAB>caption`. Its known quirks are reported, not
 * fatal: one line has two spaces where the tab should be, and five captions name an image
 * that does not exist (`2258277193_586949ec62.jpg.1`). The variant has no split files: its
 * images are split by sorted file name, 6,000 / 1,000 / the rest, which is NOT the standard
 * split (a warning says so).
 *
 * The result is the same index a COCO captions file gives (coco.ts), so everything downstream
 * works unchanged. The dev split plays COCO's "val" (model selection); test is what is reported.
 * An image's id is the Flickr photo id that starts its file name (`1000268201_693b08cb0e.jpg`
 * → 1000268201): stable, unique, and the same in both layouts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { CocoCaption, CocoCaptionIndex, CocoImage, Split } from "./coco";

export const FLICKR8K_TOKEN_FILE = "Flickr8k.token.txt";
export const FLICKR8K_CSV_FILE = "captions.txt";
/** The split files of the official text zip; "dev" is Flickr8k's name for the validation split. */
export const FLICKR8K_SPLIT_FILES: Record<Split, string> = {
  train: "Flickr_8k.trainImages.txt",
  val: "Flickr_8k.devImages.txt",
  test: "Flickr_8k.testImages.txt",
};
/** Where the photos may be: the official zip's spelling (sic), then the usual renamings. */
const IMAGE_FOLDERS = ["Flicker8k_Dataset", "Flickr8k_Dataset", "images", "Images"];

/** One file name and its captions, in file order. */
type CaptionTable = Map<string, string[]>;

export interface Flickr8kLayout {
  root: string;
  imageDir: string;
  /** The caption file read: the token file, or captions.txt. */
  captionFile: string;
  /** The split files, or null for the captions.txt variant (split by file name). */
  splitFiles: Record<Split, string> | null;
}

/** Is there a Flickr8k dataset (either layout) at `root`? */
export function isFlickr8k(root: string): boolean {
  return fs.existsSync(path.join(root, FLICKR8K_TOKEN_FILE)) || fs.existsSync(path.join(root, FLICKR8K_CSV_FILE));
}

/** Finds the files of a Flickr8k dataset at `root`; a missing piece is an error that names it. */
export function flickr8kLayout(root: string): Flickr8kLayout {
  const folder = IMAGE_FOLDERS.map((f) => path.join(root, f)).find((dir) => fs.existsSync(dir));
  if (!folder) throw new Error(`${root}: no Flickr8k image folder (looked for ${IMAGE_FOLDERS.join(", ")}; run \`npm run data:flickr8k\`)`);
  const tokenFile = path.join(root, FLICKR8K_TOKEN_FILE);
  if (fs.existsSync(tokenFile)) {
    const splitFiles = Object.fromEntries(
      Object.entries(FLICKR8K_SPLIT_FILES).map(([split, file]) => [split, path.join(root, file)]),
    ) as Record<Split, string>;
    const missing = Object.values(splitFiles).filter((f) => !fs.existsSync(f));
    if (missing.length) throw new Error(`${missing.join(", ")}: file not found (the standard split files come with ${FLICKR8K_TOKEN_FILE})`);
    return { root, imageDir: folder, captionFile: tokenFile, splitFiles };
  }
  const csv = path.join(root, FLICKR8K_CSV_FILE);
  if (fs.existsSync(csv)) return { root, imageDir: folder, captionFile: csv, splitFiles: null };
  throw new Error(`${root}: neither ${FLICKR8K_TOKEN_FILE} nor ${FLICKR8K_CSV_FILE} found (run \`npm run data:flickr8k\`)`);
}

/** What was odd in the files but did not stop the reading, one line each. */
export type Warn = (message: string) => void;

/**
 * Parses `Flickr8k.token.txt`. A line is `NAME.jpg#N`, a tab, the caption; a line whose tab
 * became spaces is still read (and reported).
 */
export function parseTokenFile(text: string, file: string, warn: Warn = () => {}): CaptionTable {
  const table: CaptionTable = new Map();
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    const match = line.match(/^([^#\s]+)#(\d+)(\t|\s+)(.*)$/);
    if (!match) throw new Error(`${file}:${i + 1}: expected "IMAGE.jpg#N<TAB>caption", got ${JSON.stringify(line.slice(0, 60))}`);
    const [, name, , separator, caption] = match;
    if (separator !== "\t") warn(`${file}:${i + 1}: spaces instead of a tab after ${name}#${match[2]} (read anyway)`);
    addCaption(table, name, caption);
  });
  return table;
}

/** Parses the `captions.txt` variant: CSV with a header `image,caption`; captions may be quoted. */
export function parseCaptionsCsv(text: string, file: string): CaptionTable {
  const table: CaptionTable = new Map();
  const lines = text.split(/\r?\n/);
  if (!/^image\s*,\s*caption\s*$/i.test(lines[0] ?? "")) {
    throw new Error(`${file}:1: expected the header "image,caption", got ${JSON.stringify((lines[0] ?? "").slice(0, 60))}`);
  }
  lines.slice(1).forEach((line, i) => {
    if (!line.trim()) return;
    const comma = line.indexOf(",");
    if (comma < 1) throw new Error(`${file}:${i + 2}: expected "image,caption", got ${JSON.stringify(line.slice(0, 60))}`);
    addCaption(table, line.slice(0, comma).trim(), unquote(line.slice(comma + 1)));
  });
  return table;
}

function addCaption(table: CaptionTable, name: string, caption: string): void {
  const list = table.get(name) ?? [];
  list.push(caption.trim());
  table.set(name, list);
}

/** A CSV field: `"a ""quoted"" word"` → `a "quoted" word`; an unquoted field as it is. */
function unquote(field: string): string {
  const f = field.trim();
  return f.length >= 2 && f.startsWith('"') && f.endsWith('"') ? f.slice(1, -1).replace(/""/g, '"') : f;
}

/** The image id of a Flickr8k file name: the Flickr photo id before the first "_". */
export function flickr8kImageId(fileName: string): number {
  const match = fileName.match(/^(\d+)_/);
  if (!match) throw new Error(`${fileName}: not a Flickr8k file name (expected "<photo id>_<secret>.jpg")`);
  return Number(match[1]);
}

/**
 * Reads one split of the Flickr8k dataset at `root` into a COCO-style index. Captions of images
 * that are not in the split's list are left out; listed images without captions, or missing
 * from the image folder, are errors (a dataset that silently shrinks hides a broken download).
 */
export function loadFlickr8kSplit(root: string, split: Split, warn: Warn = () => {}): CocoCaptionIndex {
  const layout = flickr8kLayout(root);
  const text = fs.readFileSync(layout.captionFile, "utf8");
  const table = layout.splitFiles ? parseTokenFile(text, layout.captionFile, warn) : parseCaptionsCsv(text, layout.captionFile);
  const names = layout.splitFiles ? readSplitFile(layout.splitFiles[split]) : splitBySortedName([...table.keys()], split, layout, warn);
  reportUnlisted(table, layout, warn);
  return buildIndex(names, table, layout, split);
}

function readSplitFile(file: string): string[] {
  return fs.readFileSync(file, "utf8").split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

/** The captions.txt variant has no split files: 6,000 / 1,000 / the rest, by sorted file name. */
function splitBySortedName(names: string[], split: Split, layout: Flickr8kLayout, warn: Warn): string[] {
  warn(`${layout.captionFile}: no Flickr_8k.*Images.txt split files; splitting by sorted file name (not the standard split)`);
  const sorted = [...names].sort();
  const bounds: Record<Split, [number, number]> = { train: [0, 6000], val: [6000, 7000], test: [7000, sorted.length] };
  return sorted.slice(...bounds[split]);
}

/** Captions naming a file that is not in the image folder (the token file's `….jpg.1`) are reported once. */
function reportUnlisted(table: CaptionTable, layout: Flickr8kLayout, warn: Warn): void {
  for (const [name, captions] of table) {
    if (!fs.existsSync(path.join(layout.imageDir, name))) {
      warn(`${layout.captionFile}: ${captions.length} captions name ${name}, which is not in ${layout.imageDir} (ignored)`);
    }
  }
}

function buildIndex(names: string[], table: CaptionTable, layout: Flickr8kLayout, split: Split): CocoCaptionIndex {
  const images: CocoImage[] = [];
  const captions: CocoCaption[] = [];
  const captionsByImageId = new Map<number, CocoCaption[]>();
  const imagesById = new Map<number, CocoImage>();
  for (const name of names) {
    const texts = table.get(name);
    if (!texts?.length) throw new Error(`${layout.captionFile}: no captions for ${name}, listed in the ${split} split`);
    if (!fs.existsSync(path.join(layout.imageDir, name))) throw new Error(`${path.join(layout.imageDir, name)}: file not found (listed in the ${split} split)`);
    const id = flickr8kImageId(name);
    if (imagesById.has(id)) throw new Error(`${layout.root}: ${imagesById.get(id)!.file_name} and ${name} have the same photo id ${id}`);
    // Flickr8k's files give no image sizes and nothing downstream needs them: 0 means "not read".
    const image: CocoImage = { id, file_name: name, width: 0, height: 0 };
    const list = texts.map((caption, k) => ({ id: captions.length + k + 1, image_id: id, caption }));
    images.push(image);
    imagesById.set(id, image);
    captions.push(...list);
    captionsByImageId.set(id, list);
  }
  const imagePath = (imageId: number): string => {
    const image = imagesById.get(imageId);
    if (!image) throw new Error(`${layout.root}: no image with id ${imageId} in the ${split} split`);
    return path.join(layout.imageDir, image.file_name);
  };
  return { file: layout.captionFile, imageDir: layout.imageDir, images, imagesById, imagePath, captions, captionsByImageId };
}
