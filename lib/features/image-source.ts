/**
 * Where a batch's image data comes from: decoded pixels, or backbone features cached on disk.
 *
 * With a frozen backbone the CNN's output never changes, so it is computed once per image and
 * read back (lib/features/feature-cache.ts): an epoch then costs only the decoder. What that gives up is
 * augmentation — every epoch sees the same centre crop of each image, never a random crop or a
 * flip. With a trainable CNN (the small one on the synthetic scenes) pixels must be decoded;
 * when the transform has no randomness their decoded form is kept in memory after first use.
 */
import * as path from "node:path";
import type { CocoCaptionIndex } from "../data/coco";
import { extractFeatures, FeatureCache, featureSource, type FeatureExtractionProgress } from "./feature-cache";
import type { ImageSource } from "../data/loader";
import { PretrainedBackbone, type Backbone } from "../model/backbone";
import { transformSource, type TransformConfig } from "../data/transforms";

export interface DataSource {
  source: ImageSource;
  /** Shape of one image's data: [S, S, 3] pixels or [featureDim] features. */
  shape: number[];
  close(): Promise<void>;
}

/** What a source needs of a captioner: its image encoder's backbone, and its transform (train or eval). */
export interface ImageModel {
  backbone: Backbone;
  transform(train?: boolean, flip?: boolean): TransformConfig;
}

export interface SourceOptions {
  /** Random crops and flips (only for pixels; training). Default: off. */
  augment?: boolean;
  /** Use (and fill) the on-disk feature cache when the backbone is frozen. Default: off (pixels). */
  featureCache?: boolean;
  /** Folder of feature caches, needed with `featureCache`: `<cacheDir>/<backbone name>/<split>/` (see featureCacheDir). */
  cacheDir?: string;
  onProgress?: (p: FeatureExtractionProgress) => void;
  /** W, the threads that run the CNN when the feature cache is filled (default 1; feature-cache.ts). */
  workers?: number;
}

/** A split's image data for `model`: decoded pixels, unless `opts` asks for the feature cache. */
export async function imageSource(model: ImageModel, index: CocoCaptionIndex, split: string, opts: SourceOptions = {}): Promise<DataSource> {
  const backbone = model.backbone;
  if (opts.featureCache && backbone instanceof PretrainedBackbone) {
    if (!opts.cacheDir) throw new Error("imageSource: featureCache needs a cacheDir (a preset's featureDir)");
    const dir = featureCacheDir(opts.cacheDir, backbone.name, split);
    const transform = model.transform(false);
    const images = index.images.map((image) => ({ imageId: image.id, file: index.imagePath(image.id) }));
    await extractFeatures({ dir, backbone, transform, images, onProgress: opts.onProgress, workers: opts.workers });
    const cache = await FeatureCache.open(dir);
    return { source: featureSource(cache), shape: [backbone.featureDim], close: () => cache.close() };
  }
  const augment = opts.augment ?? false;
  const transform = model.transform(augment, augment);
  const decode = transformSource((id) => index.imagePath(id), transform);
  const source = isDeterministic(transform) ? memoize(decode) : decode;
  return { source, shape: [transform.crop, transform.crop, 3], close: async () => {} };
}

/** The one place a split's feature cache lives: training and `npm run features` both use it. */
export function featureCacheDir(featureDir: string, backboneName: string, split: string): string {
  return path.join(featureDir, backboneName, split);
}

function isDeterministic(t: TransformConfig): boolean {
  return !t.train || (t.crop === t.resize && !t.flip);
}

/** Keeps each image's decoded data after its first read (fine for the small synthetic images). */
function memoize(source: ImageSource): ImageSource {
  const cache = new Map<number, Promise<Float32Array>>();
  return (imageId, rng) => {
    let data = cache.get(imageId);
    if (!data) {
      data = source(imageId, rng);
      data.catch(() => cache.delete(imageId)); // a failed read is not remembered
      cache.set(imageId, data);
    }
    return data;
  };
}
