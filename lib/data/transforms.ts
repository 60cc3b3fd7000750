/**
 * Image transforms: an image file → the Float32Array that the encoder takes.
 *
 * The pipeline, the same for training and evaluation:
 *   1. decode any JPEG/PNG/WebP (grayscale, CMYK, 16-bit, with alpha) to 8-bit sRGB with sharp,
 *      turning it upright by its EXIF orientation and flattening transparency onto white;
 *   2. resize so that the shorter side is `resize` pixels (aspect ratio kept);
 *   3. cut a `crop`×`crop` square: at random (train) or in the centre (eval), and mirror it
 *      left-right with probability 0.5 when flips are allowed (train only);
 *   4. scale to [0, 1] and normalise per channel: (pixel/255 − mean) / std.
 * Output: Float32Array [crop, crop, 3] (HWC), the layout of one image in an NHWC tensor.
 *
 * Steps 3 and 4 run in one JavaScript loop over sharp's raw output rather than as sharp's
 * extract/flop: that needs a single sharp call (no metadata round trip to learn the resized
 * size) and is as fast (docs/performance.md#decoding-images).
 */
import fs from "node:fs";
import sharp from "sharp";
import type { Random } from "./random";

/** ImageNet statistics on [0, 1] pixels, used by torchvision's pretrained models. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/**
 * Transparent pixels are composited onto white: transparent PNGs (logos, cut-outs) are
 * drawn to be seen on a white page. (PIL's `convert("RGB")` would instead keep whatever
 * colour hides under the transparency, often black.)
 */
export const ALPHA_BACKGROUND = { r: 255, g: 255, b: 255 } as const;

/** What to do to an image on its way to the encoder. Plain JSON: hash it to fingerprint a feature cache. */
export interface TransformConfig {
  /** Length in pixels of the shorter side after resizing (aspect ratio kept). */
  resize: number;
  /** Side in pixels of the square cut from the resized image (≤ resize). */
  crop: number;
  /** true: random crop (and flip, if allowed), needs a Random; false: centre crop, no randomness. */
  train: boolean;
  /**
   * May a training image be mirrored left-right (p = 0.5)? Disable it when captions name
   * directions: the synthetic set says "to the left of", which a flip would make false.
   */
  flip: boolean;
  /** Per-channel mean and std (R, G, B) of [0, 1] pixels, subtracted and divided out. */
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** Training preset: resize 256, random 224 crop, flip p = 0.5, ImageNet normalisation. */
export function trainTransform(overrides: Partial<TransformConfig> = {}): TransformConfig {
  return checkTransform({ resize: 256, crop: 224, train: true, flip: true, mean: IMAGENET_MEAN, std: IMAGENET_STD, ...overrides });
}

/** Evaluation preset: resize 256, centre 224 crop, no randomness, ImageNet normalisation. */
export function evalTransform(overrides: Partial<TransformConfig> = {}): TransformConfig {
  return checkTransform({ resize: 256, crop: 224, train: false, flip: false, mean: IMAGENET_MEAN, std: IMAGENET_STD, ...overrides });
}

/** Throws an Error naming the first field of `config` that cannot work; returns it otherwise. */
export function checkTransform(config: TransformConfig): TransformConfig {
  const { resize, crop, mean, std } = config;
  if (!Number.isInteger(resize) || resize < 1) throw new Error(`TransformConfig.resize must be a positive integer, got ${resize}`);
  if (!Number.isInteger(crop) || crop < 1) throw new Error(`TransformConfig.crop must be a positive integer, got ${crop}`);
  if (crop > resize) throw new Error(`TransformConfig.crop (${crop}) must not exceed resize (${resize})`);
  if (mean?.length !== 3 || !mean.every(Number.isFinite)) throw new Error(`TransformConfig.mean must be 3 numbers, got ${JSON.stringify(mean)}`);
  if (std?.length !== 3 || !std.every((s) => Number.isFinite(s) && s > 0)) {
    throw new Error(`TransformConfig.std must be 3 positive numbers, got ${JSON.stringify(std)}`);
  }
  return config;
}

/** An image that could not be read: `file` names it, `reason` says what is wrong. */
export class ImageError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = "ImageError";
  }
}

/**
 * Turns sharp's error for `file` into an ImageError with a reason a person can act on.
 * Only the start of sharp's message is matched: libvips keeps one error buffer for all
 * threads, so when several decodes fail at once, the rest can carry another file's error.
 */
function imageError(file: string, err: unknown): ImageError {
  const message = err instanceof Error ? err.message : String(err);
  if (message.startsWith("Input file contains unsupported image format")) {
    return new ImageError(file, "not an image, or a format sharp cannot read (empty or unknown content)");
  }
  return new ImageError(file, `corrupt or truncated image (${message})`);
}

/**
 * The shared start of every pipeline: decode, turn upright by EXIF (`rotate()` without an
 * angle), flatten alpha onto white, convert to sRGB (grayscale → 3 equal channels, CMYK →
 * RGB through its ICC profile). `failOn: "error"` rejects truncated and broken files but,
 * like PIL, tolerates mere warnings (libjpeg's "corrupt JPEG data: extraneous bytes").
 */
function openRGB(file: string): sharp.Sharp {
  // Asked here, not of sharp: sharp tells a missing file by the end of that shared buffer.
  if (!fs.existsSync(file)) throw new ImageError(file, "file not found");
  return sharp(file, { failOn: "error" }).rotate().flatten({ background: ALPHA_BACKGROUND }).toColourspace("srgb");
}

/** Decoded 8-bit RGB pixels, row-major HWC. */
export interface RGBImage {
  data: Uint8Array; // [height, width, 3]
  width: number;
  height: number;
}

/**
 * Decodes `file` to upright 8-bit RGB, resized so its shorter side is `shorterSide` pixels
 * when given (small images are enlarged). Throws ImageError if the file is missing or corrupt.
 * Resampling uses sharp's default Lanczos-3 kernel (torchvision's Resize is bilinear), since the
 * cheaper kernels measured no faster beyond the noise (docs/performance.md#decoding-images).
 */
export async function readRGB(file: string, shorterSide?: number): Promise<RGBImage> {
  let pipeline = openRGB(file);
  if (shorterSide !== undefined) pipeline = pipeline.resize(shorterSide, shorterSide, { fit: "outside" });
  let result: { data: Buffer; info: sharp.OutputInfo };
  try {
    result = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw imageError(file, err);
  }
  const { data, info } = result;
  if (info.channels !== 3) throw new ImageError(file, `decoded to ${info.channels} channels, expected 3`);
  return { data, width: info.width, height: info.height };
}

/** Where to cut the crop, as fractions of the free space, and whether to mirror it. */
interface CropPlan {
  fx: number; // [0, 1): 0 = left edge
  fy: number; // [0, 1): 0 = top edge
  flip: boolean;
}

/**
 * Draws the random choices for one training image. They are drawn before any decoding
 * starts, so the draws happen in call order even when decodes finish out of order.
 */
function drawCrop(config: TransformConfig, rng: Random | undefined): CropPlan | undefined {
  if (!config.train) return undefined; // centre crop
  if (!rng) throw new Error("transformImage: a training transform (train: true) needs a Random");
  const fx = rng.next();
  const fy = rng.next();
  return { fx, fy, flip: config.flip && rng.next() < 0.5 };
}

/** Left/top offset of a crop of `crop` pixels in a side of `side` pixels. */
function offset(side: number, crop: number, fraction: number | undefined): number {
  const free = side - crop;
  // Random: each of the free + 1 positions equally likely. Centre: rounded down.
  return fraction === undefined ? Math.floor(free / 2) : Math.floor(fraction * (free + 1));
}

/**
 * Per channel, the normalised value of each 8-bit level: lut[c * 256 + v] = (v/255 − mean[c]) / std[c].
 * A table lookup is cheaper than the arithmetic in the inner loop.
 */
function normalisationTable(mean: readonly number[], std: readonly number[]): Float32Array {
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - mean[c]) / std[c];
  }
  return lut;
}

/** Cuts, optionally mirrors and normalises a crop of `image` in one pass. */
function cropFlipNormalise(image: RGBImage, config: TransformConfig, plan: CropPlan | undefined): Float32Array {
  const { data, width, height } = image;
  const { crop } = config;
  const left = offset(width, crop, plan?.fx);
  const top = offset(height, crop, plan?.fy);
  const flip = plan?.flip ?? false;
  const lut = normalisationTable(config.mean, config.std);
  const out = new Float32Array(crop * crop * 3); // [crop, crop, 3]
  let o = 0;
  for (let y = 0; y < crop; y++) {
    const row = (top + y) * width;
    for (let x = 0; x < crop; x++) {
      const i = (row + left + (flip ? crop - 1 - x : x)) * 3;
      out[o++] = lut[data[i]];
      out[o++] = lut[256 + data[i + 1]];
      out[o++] = lut[512 + data[i + 2]];
    }
  }
  return out;
}

/**
 * Reads `file` and applies `config`: Float32Array [crop, crop, 3]. A training transform
 * draws its crop and flip from `rng` (three draws, or two when flips are off); an
 * evaluation transform draws nothing and always gives the same result.
 * Throws ImageError if the file is missing or corrupt.
 */
export async function transformImage(file: string, config: TransformConfig, rng?: Random): Promise<Float32Array> {
  checkTransform(config);
  const plan = drawCrop(config, rng);
  const image = await readRGB(file, config.resize);
  if (image.width < config.crop || image.height < config.crop) {
    throw new ImageError(file, `resized to ${image.width}x${image.height}, smaller than the ${config.crop}px crop`);
  }
  return cropFlipNormalise(image, config, plan);
}

/**
 * An image source for the loader: image id → transformed pixels. `pathOf` maps an id to
 * its file (e.g. from the COCO `images` table).
 */
export function transformSource(pathOf: (imageId: number) => string, config: TransformConfig) {
  checkTransform(config);
  return (imageId: number, rng?: Random): Promise<Float32Array> => transformImage(pathOf(imageId), config, rng);
}

/**
 * PNG or JPEG bytes of `file`, upright, scaled so its longer side is `size` pixels (small
 * images are enlarged), for showing in a notebook. Throws ImageError like transformImage.
 */
export async function thumbnail(file: string, size: number, format: "png" | "jpeg" = "jpeg"): Promise<Buffer> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`thumbnail: size must be a positive integer, got ${size}`);
  const pipeline = openRGB(file).resize(size, size, { fit: "inside" });
  try {
    return await (format === "png" ? pipeline.png() : pipeline.jpeg({ quality: 85 })).toBuffer();
  } catch (err) {
    throw imageError(file, err);
  }
}

/** An image ready for a notebook: its bytes and how big to draw them. */
export interface DisplayImage {
  bytes: Buffer;
  mime: "image/png" | "image/jpeg";
  /** Size of the encoded image in pixels. */
  width: number;
  height: number;
  /** The width to draw it at, in CSS pixels: an integer multiple of `width` for a small image. */
  cssWidth: number;
  /** Draw with `image-rendering: pixelated` (an enlarged small image: sharp squares, not a blur). */
  pixelated: boolean;
}

/**
 * `file` for showing in a box of `box` CSS pixels. A larger image is scaled down to fit (JPEG); a
 * smaller one keeps its pixels (PNG, so no new JPEG artefacts) and is drawn at the largest whole
 * multiple of its size that fits, pixelated: a 96 px synthetic image at 2x shows its real pixels
 * instead of a resampled blur.
 */
export async function displayImage(file: string, box: number): Promise<DisplayImage> {
  const { width, height } = await readRGB(file);
  const side = Math.max(width, height);
  if (side > box) {
    const bytes = await thumbnail(file, box);
    const scaled = { width: Math.round((width * box) / side), height: Math.round((height * box) / side) };
    return { bytes, mime: "image/jpeg", ...scaled, cssWidth: scaled.width, pixelated: false };
  }
  const scale = Math.floor(box / side);
  const bytes = await thumbnail(file, side, "png");
  return { bytes, mime: "image/png", width, height, cssWidth: width * scale, pixelated: scale > 1 };
}

/**
 * What the model sees, as a picture: transformed pixels [crop, crop, 3], normalised per channel
 * with `config.mean` and `config.std`, mapped back to 8-bit colours (PNG), drawn like
 * `displayImage` in a box of `box` CSS pixels.
 */
export async function modelInputImage(pixels: Float32Array, config: TransformConfig, box: number): Promise<DisplayImage> {
  const size = config.crop;
  if (pixels.length !== size * size * 3) {
    throw new Error(`modelInputImage: ${pixels.length} values are not a ${size}x${size}x3 image (the transform's crop)`);
  }
  const rgb = new Uint8Array(pixels.length); // [size, size, 3]
  for (let i = 0; i < pixels.length; i++) {
    const c = i % 3;
    rgb[i] = Math.round(Math.min(1, Math.max(0, pixels[i] * config.std[c] + config.mean[c])) * 255);
  }
  const bytes = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
  const scale = Math.max(1, Math.floor(box / size));
  return { bytes, mime: "image/png", width: size, height: size, cssWidth: size * scale, pixelated: scale > 1 };
}
