/**
 * The COCO captions file format, as the synthetic generator writes it.
 *
 * The files follow the layout of MS COCO 2014 (captions_train2014.json, ...): the same
 * top-level blocks and the same fields per image and per caption, so that the COCO
 * reader, the loader and the evaluation code cannot tell synthetic data from real data.
 * Objects are built with their keys in a fixed order, so JSON.stringify gives the same
 * bytes every time.
 */

import { SPLITS, type Split } from "../coco";

export { SPLITS, type Split };

/**
 * Bumped whenever the generator's output changes; part of the manifest, so old datasets get rebuilt.
 * 1.2.0: image files named synthetic_<split>_<id>.jpg instead of COCO's names (same pixels and captions).
 */
export const SYNTHETIC_GENERATOR_VERSION = "1.2.0";
/** The release date of SYNTHETIC_GENERATOR_VERSION: the info block's date comes from here, never from the clock. */
export const SYNTHETIC_GENERATOR_DATE = "2025-01-01 00:00:00";

export interface CocoInfo {
  description: string;
  url: string;
  version: string;
  year: number;
  contributor: string;
  date_created: string;
}

export interface CocoLicense {
  id: number;
  name: string;
  url: string;
}

export interface CocoImage {
  id: number;
  file_name: string;
  width: number;
  height: number;
  license: number;
  date_captured: string;
}

export interface CocoAnnotation {
  id: number;
  image_id: number;
  caption: string;
}

/** captions_<split>2014.json; image_info_test2014.json is the same without `annotations`. */
export interface CocoCaptionsFile {
  info: CocoInfo;
  licenses: CocoLicense[];
  images: CocoImage[];
  annotations?: CocoAnnotation[];
}

export const SYNTHETIC_LICENSES: CocoLicense[] = [
  { id: 1, name: "CC0 1.0 Universal (generated images)", url: "https://creativecommons.org/publicdomain/zero/1.0/" },
];

/** The info block: fixed by the seed and the generator version. */
export function syntheticInfo(seed: number): CocoInfo {
  return {
    description: `Synthetic shapes in the COCO captions format (seed ${seed})`,
    url: "",
    version: SYNTHETIC_GENERATOR_VERSION,
    year: Number(SYNTHETIC_GENERATOR_DATE.slice(0, 4)),
    contributor: "show-and-tell-ts synthetic generator",
    date_created: SYNTHETIC_GENERATOR_DATE,
  };
}

/**
 * A synthetic image's file name, synthetic_train_000123.jpg: named for what it is, so it is never
 * taken for a COCO photo (COCO_train2014_000000000123.jpg). The id is the last number, as in COCO's
 * names, which is where `npm run caption` reads it from.
 */
export function syntheticFileName(split: Split, imageId: number, extension = "jpg"): string {
  return `synthetic_${split}_${String(imageId).padStart(6, "0")}.${extension}`;
}

/** Paths inside a dataset root, the same for real COCO and the synthetic set. */
export const datasetLayout = {
  captions: (split: Split) => `annotations/captions_${split}2014.json`,
  testImageInfo: "annotations/image_info_test2014.json",
  scenes: (split: Split) => `annotations/scenes_${split}2014.json`,
  imageDir: (split: Split) => `images/${split}2014`,
};

export function cocoImage(split: Split, imageId: number, size: number): CocoImage {
  return {
    id: imageId,
    file_name: syntheticFileName(split, imageId),
    width: size,
    height: size,
    license: 1,
    date_captured: SYNTHETIC_GENERATOR_DATE,
  };
}
