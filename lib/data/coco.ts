/**
 * MS COCO caption files: where they live, and reading them into an index.
 *
 * A captions file (captions_train2014.json, captions_val2014.json) is
 *
 *     { "images":      [{ "id": 139, "file_name": "COCO_val2014_000000000139.jpg", "width": 640, "height": 426, ... }],
 *       "annotations": [{ "id": 48, "image_id": 139, "caption": "A woman stands in the dining area." }],
 *       "info": ..., "licenses": ... }
 *
 * with about five captions per image; image_info_test2014.json has the images only. The
 * synthetic dataset (lib/data/synthetic) writes exactly the same files. Every entry is checked
 * on load, so a broken file fails here, with the file, the entry and the field named,
 * rather than as a mysterious `undefined` in the middle of training.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";

export type Split = "train" | "val" | "test";
export const SPLITS: readonly Split[] = ["train", "val", "test"];

/** Where a COCO-layout dataset keeps its files (the same layout for real COCO and the synthetic set). */
export interface CocoPaths {
  root: string;
  /** The file that lists each split's images: captions for train and val, image info for test. */
  annotations: Record<Split, string>;
  /** Test captions: only the synthetic set has them (COCO keeps its test captions private). */
  testCaptions: string;
  /** The folder of each split's image files. */
  images: Record<Split, string>;
}

/** Paths of the default layout: `<root>/annotations/captions_train2014.json`, `<root>/images/train2014/`, ... */
export function cocoPaths(root = "data/cocoapi"): CocoPaths {
  const annotations = path.join(root, "annotations");
  return {
    root,
    annotations: {
      train: path.join(annotations, "captions_train2014.json"),
      val: path.join(annotations, "captions_val2014.json"),
      test: path.join(annotations, "image_info_test2014.json"),
    },
    testCaptions: path.join(annotations, "captions_test2014.json"),
    images: {
      train: path.join(root, "images", "train2014"),
      val: path.join(root, "images", "val2014"),
      test: path.join(root, "images", "test2014"),
    },
  };
}

/** One entry of "images" (other fields of the file, such as coco_url, are kept but not typed). */
export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
}

/** One entry of "annotations": a caption of one image. */
export interface CocoCaption {
  id: number;
  image_id: number;
  caption: string;
}

/** The images of a file, indexed by id. */
export interface CocoImageIndex {
  /** The file they were read from (as given by the caller). */
  file: string;
  imageDir: string;
  /** In file order. */
  images: readonly CocoImage[];
  imagesById: ReadonlyMap<number, CocoImage>;
  /** `<imageDir>/<file_name>` of an image; throws on an id that is not in the file. */
  imagePath(imageId: number): string;
}

/** The images and captions of a captions file. */
export interface CocoCaptionIndex extends CocoImageIndex {
  /** In file order. */
  captions: readonly CocoCaption[];
  /** The captions of every image, in file order (an empty array for an image without captions). */
  captionsByImageId: ReadonlyMap<number, readonly CocoCaption[]>;
}

/** Reads and checks a captions file (captions_train2014.json, captions_val2014.json). */
export async function loadCaptions(annotationFile: string, imageDir: string): Promise<CocoCaptionIndex> {
  return parseCaptions(await readText(annotationFile), annotationFile, imageDir);
}

/** Reads and checks an image-info file (image_info_test2014.json): images, no captions. */
export async function loadTestImageInfo(file: string, imageDir: string): Promise<CocoImageIndex> {
  return parseTestImageInfo(await readText(file), file, imageDir);
}

/** The captions file's JSON text, already read; `file` names it in errors. */
export function parseCaptions(text: string, file: string, imageDir: string): CocoCaptionIndex {
  const root = parseRoot(text, file);
  const index = indexImages(root, file, imageDir);
  const captions = checkEntries<CocoCaption>(root, "annotations", CAPTION_FIELDS, file);
  const captionsByImageId = new Map<number, CocoCaption[]>(index.images.map((image) => [image.id, []]));
  const ids = new Set<number>();
  for (let i = 0; i < captions.length; i++) {
    const caption = captions[i];
    if (ids.has(caption.id)) failDuplicate(captions, i, "annotations", file);
    ids.add(caption.id);
    const list = captionsByImageId.get(caption.image_id);
    if (list === undefined) {
      const message = `"image_id" ${caption.image_id} is not the id of any entry of "images"`;
      fail(file, entryName("annotations", i, caption), message);
    }
    list.push(caption);
  }
  return { ...index, captions, captionsByImageId };
}

/** The image-info file's JSON text, already read; `file` names it in errors. */
export function parseTestImageInfo(text: string, file: string, imageDir: string): CocoImageIndex {
  return indexImages(parseRoot(text, file), file, imageDir);
}

// ---- reading and checking ----

type Json = Record<string, unknown>;

/** A field that every entry must have: its name, its check, and what the check expects. */
export type FieldRule = [key: string, isValid: (value: unknown) => boolean, expected: string];

const IMAGE_FIELDS: FieldRule[] = [
  ["id", isId, "a non-negative integer"],
  ["file_name", isNonEmptyString, "a non-empty string"],
  ["width", isPositiveInteger, "a positive integer"],
  ["height", isPositiveInteger, "a positive integer"],
];

const CAPTION_FIELDS: FieldRule[] = [
  ["id", isId, "a non-negative integer"],
  ["image_id", isId, "a non-negative integer"],
  ["caption", isNonEmptyString, "a non-empty string"],
];

async function readText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (err) {
    throw new Error(`${file}: cannot read the annotation file: ${(err as Error).message}`);
  }
}

export function parseRoot(text: string, file: string): Json {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(root)) fail(file, "top level", `must be a JSON object (got ${show(root)})`);
  return root;
}

function indexImages(root: Json, file: string, imageDir: string): CocoImageIndex {
  const images = checkEntries<CocoImage>(root, "images", IMAGE_FIELDS, file);
  const imagesById = new Map<number, CocoImage>();
  for (let i = 0; i < images.length; i++) {
    if (imagesById.has(images[i].id)) failDuplicate(images, i, "images", file);
    imagesById.set(images[i].id, images[i]);
  }
  const imagePath = (imageId: number): string => {
    const image = imagesById.get(imageId);
    if (image === undefined) throw new Error(`${file}: no image with id ${imageId}`);
    return path.join(imageDir, image.file_name);
  };
  return { file, imageDir, images, imagesById, imagePath };
}

/**
 * Checks that `root[list]` is an array of objects that have every field, and returns it.
 * (The entries are checked in place and not copied: the file may hold 414,113 of them.)
 */
export function checkEntries<Entry>(root: Json, list: string, fields: FieldRule[], file: string): Entry[] {
  const entries: unknown = root[list];
  if (!Array.isArray(entries)) fail(file, "top level", `"${list}" must be an array (got ${show(entries)})`);
  for (let i = 0; i < entries.length; i++) {
    const entry: unknown = entries[i];
    if (!isObject(entry)) fail(file, `${list}[${i}]`, `must be an object (got ${show(entry)})`);
    for (const [key, isValid, expected] of fields) {
      if (isValid(entry[key])) continue;
      const got = key in entry ? `got ${show(entry[key])}` : "missing";
      fail(file, entryName(list, i, entry), `"${key}" must be ${expected} (${got})`);
    }
  }
  return entries;
}

/** Fails on entries[i], whose id an earlier entry already has. */
function failDuplicate(entries: { id: number }[], i: number, list: string, file: string): never {
  const first = entries.findIndex((entry) => entry.id === entries[i].id);
  fail(file, entryName(list, i, entries[i]), `duplicate id, already used by ${list}[${first}]`);
}

/** "annotations[17] (id 4242)", or "annotations[17]" when the entry has no usable id. */
function entryName(list: string, i: number, entry: unknown): string {
  const id = isObject(entry) && isId(entry.id) ? ` (id ${entry.id})` : "";
  return `${list}[${i}]${id}`;
}

function fail(file: string, where: string, message: string): never {
  throw new Error(`${file}: ${where}: ${message}`);
}

/** A value as it would appear in the file, cut short: for error messages. */
function show(value: unknown): string {
  const text = value === undefined ? "nothing" : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isPositiveInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** A string with at least one non-space character. */
function isNonEmptyString(value: unknown): value is string {
  return typeof value === "string" && value.trim() !== "";
}
