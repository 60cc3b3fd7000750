/**
 * Backbones: the CNN at the bottom of the encoder, which turns an image into a feature vector.
 *
 * Show and Tell used an ImageNet-pretrained CNN with its classifier removed (the PyTorch
 * tutorial: ResNet-50 up to its average pool, 2048 numbers per image), kept frozen. Here a
 * pretrained backbone is any tfjs model, layers or graph format, given by URL or local folder,
 * cut at a feature layer that the caller names. Each definition (`BackboneSpec`) also carries
 * the input size and the pixel normalisation the network was trained with. A network fed
 * pixels in another range still runs, without any error, on inputs unlike all it was trained
 * on (ImageNet statistics given to the [-1,1] MobileNet here drop its confidence in "pizza"
 * from 0.86 to 0.34), so the normalisation belongs to the model, not to the caller.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { evalTransform, type TransformConfig } from "../data/transforms";
import { DEFAULT_MODEL_CACHE, fileSystemHandler, hashModelFolder, modelFolder, modelJsonFormat } from "../io/model-cache";
import { foldLayersModel } from "../runtime/folded-cnn";
import { evenGeometry, geometryOf, kerasGridLayers, type MapGeometry } from "./map-geometry";

/** Per-channel normalisation of RGB pixels scaled to [0,1]: `(pixel - mean) / std`. */
export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

/** torchvision's ImageNet statistics: what ResNets trained in PyTorch expect. */
export const IMAGENET_NORMALIZATION: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** [0,1] → [-1,1] (`x / 127.5 - 1` on 0..255 pixels): Keras MobileNets. */
export const MINUS_ONE_TO_ONE: Normalization = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
/** Pixels left in [0,1]: TF Hub image models, which rescale inside the graph. */
export const ZERO_TO_ONE: Normalization = { mean: [0, 0, 0], std: [1, 1, 1] };

/** What an encoder needs from a backbone, pretrained or trained from scratch (see small-cnn.ts). */
export interface Backbone {
  readonly name: string;
  /** Side of the square input image, in pixels. */
  readonly inputSize: number;
  /**
   * What the shorter image side is resized to before the centre crop of `inputSize`; without it,
   * 256/224 of the input size (the ImageNet convention, e.g. 256 → 224).
   */
  readonly resize?: number;
  readonly normalization: Normalization;
  /** Length of one image's feature vector. */
  readonly featureDim: number;
  /** A frozen backbone has no trainable variables, so its features can be computed once and cached. */
  readonly frozen: boolean;
  /** The variables that training updates (none for a frozen backbone). */
  readonly trainableVariables: tf.Variable[];
  /** Saved with the weights but not trained (batch norm's running statistics), if any. */
  readonly stateVariables?: tf.Variable[];
  /** [batch, inputSize, inputSize, 3] normalised images → [batch, featureDim]; `training` for batch norm. */
  features(images: tf.Tensor4D, training?: boolean): tf.Tensor2D;
  dispose(): void;
}

/**
 * A backbone whose features are computed from a convolutional feature map, split at that map so
 * that Grad-CAM (lib/explain/grad-cam.ts) can take gradients with respect to it:
 * `features(x)` = `featuresOfMap(featureMap(x))`.
 */
export interface MapBackbone extends Backbone {
  /** Name of the layer (or graph node) whose output `featureMap` is, e.g. MobileNet's `conv_pw_13_relu`. */
  readonly mapLayer: string;
  /** Where the map's cells are centred on the input (map-geometry.ts): not an even spread. */
  readonly mapGeometry: MapGeometry;
  /** [batch, inputSize, inputSize, 3] normalised images → the feature map [batch, rows, cols, channels] (inference mode). */
  featureMap(images: tf.Tensor4D): tf.Tensor4D;
  /** The rest of the backbone, differentiable: feature map [batch, rows, cols, channels] → [batch, featureDim]. */
  featuresOfMap(map: tf.Tensor4D): tf.Tensor2D;
}

/**
 * Whether `backbone` can be split at a feature map (the ground-truth "backbone" of the decoder
 * ceiling cannot). A pretrained one always says yes; cut at a layer that is no map, its
 * `featureMap` throws an error that says why.
 */
export function hasFeatureMap(backbone: Backbone): backbone is MapBackbone {
  const b = backbone as Partial<MapBackbone>;
  return typeof b.featureMap === "function" && typeof b.featuresOfMap === "function";
}

/**
 * The evaluation transform for a backbone: resize the shorter side to `backbone.resize` (by
 * default 256/224 of the input size, 256 for 224, as ImageNet models were evaluated), centre-crop
 * the input size, and normalise as the backbone expects. `overrides` changes any field (e.g.
 * `{ train: true, flip: true }`).
 */
export function transformFor(
  backbone: Pick<Backbone, "inputSize" | "resize" | "normalization">,
  overrides: Partial<TransformConfig> = {},
): TransformConfig {
  const { inputSize, normalization } = backbone;
  return evalTransform({
    resize: backbone.resize ?? Math.round((inputSize * 256) / 224),
    crop: inputSize,
    mean: normalization.mean,
    std: normalization.std,
    ...overrides,
  });
}

/**
 * The definition of a pretrained backbone: what it is, not only where it is. Its name labels
 * the feature caches and checkpoints made with it, so two different models must not share one.
 */
export interface BackboneSpec {
  /** Short name; downloads are cached under `<cacheRoot>/<name>/`. */
  name: string;
  /** An http(s) URL (model.json, its folder, or a TF Hub model page) or a local folder / model.json. */
  source: string;
  /** Checked against model.json when the model loads: a layers model read as a graph fails obscurely. */
  format: "layers" | "graph";
  /**
   * Layers model: a layer name. Graph model: an output node name; a graph model's own output is
   * taken only if it is not a classifier's (1,000 or 1,001 class scores are not features).
   */
  featureLayer?: string;
  inputSize: number;
  /** Shorter side before the centre crop (default 256/224 of inputSize); inputSize = the whole image. */
  resize?: number;
  normalization: Normalization;
}

/**
 * MobileNet V2 (width 1.0, 224x224) from TF Hub, cut before the classifier: 1280 features.
 * The practical default on CPU (~0.3 G multiply-adds per image, against ResNet-50's ~4 G).
 * Point `source` at a local copy on an offline machine: `{ ...MOBILENET_V2, source: "/models/mnv2" }`.
 */
export const MOBILENET_V2: BackboneSpec = {
  name: "mobilenet_v2_100_224",
  source: "https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v2_100_224/feature_vector/3/default/1",
  format: "graph",
  inputSize: 224,
  normalization: ZERO_TO_ONE,
};

/**
 * ResNet-50 V2 from TF Hub, the PyTorch tutorial's family of encoder (Show and Tell itself, from
 * 2014, predates ResNets: it used GoogLeNet's Inception): 2048 features, ~13x MobileNet V2's compute.
 */
export const RESNET50_V2: BackboneSpec = {
  name: "resnet_v2_50",
  source: "https://tfhub.dev/google/tfjs-model/imagenet/resnet_v2_50/feature_vector/3/default/1",
  format: "graph",
  inputSize: 224,
  normalization: ZERO_TO_ONE,
};

/** Google's Keras MobileNet V1 0.25 as hosted for tfjs (ImageNet top-1 about 50%): 256 features, small and fast. */
export const MOBILENET_V1_025: BackboneSpec = {
  name: "mobilenet_v1_0.25_224",
  source: "https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.25_224/model.json",
  format: "layers",
  featureLayer: "global_average_pooling2d_1",
  inputSize: 224,
  normalization: MINUS_ONE_TO_ONE,
};

/**
 * Google's Keras MobileNet V1 0.75 as hosted for tfjs (ImageNet top-1 about 68%, Apache-2.0): 768
 * features. The Flickr8k captioner's backbone: about 0.3 G multiply-adds an image, fast on wasm
 * with batch norm folded (docs/performance.md#batch-norm-folded-into-the-cnn).
 */
export const MOBILENET_V1_075: BackboneSpec = {
  name: "mobilenet_v1_0.75_224",
  source: "https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_0.75_224/model.json",
  format: "layers",
  featureLayer: "global_average_pooling2d_1",
  inputSize: 224,
  normalization: MINUS_ONE_TO_ONE,
};

/**
 * MobileNet V1 0.25 as TF Hub exported it, in graph format: it rescales [0,1] pixels itself and
 * has batch norm folded into the convolutions. 256 features.
 */
export const MOBILENET_V1_025_GRAPH: BackboneSpec = {
  name: "mobilenet_v1_025_224_graph",
  source: "https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v1_025_224/classification/3/default/1",
  format: "graph",
  featureLayer: "module_apply_default/MobilenetV1/Logits/global_pool",
  inputSize: 224,
  normalization: ZERO_TO_ONE,
};

/** The known backbones by the names the command lines take (`--backbone mobilenet_v1_0.75`). */
export const BACKBONES: Record<string, BackboneSpec> = {
  "mobilenet_v1_0.25": MOBILENET_V1_025,
  "mobilenet_v1_0.25_graph": MOBILENET_V1_025_GRAPH,
  "mobilenet_v1_0.75": MOBILENET_V1_075,
  mobilenet_v2: MOBILENET_V2,
  resnet50_v2: RESNET50_V2,
};

/** What a command line may say about a backbone: a preset name or a model folder, and any field to override. */
export interface BackboneOptions {
  /** A key of BACKBONES, or a local folder (or model.json) / URL of a tfjs model. */
  backbone: string;
  /** Where a preset's files are, when not at its official URL (a local copy). */
  source?: string;
  name?: string;
  format?: "layers" | "graph";
  featureLayer?: string;
  inputSize?: number;
  resize?: number;
  normalization?: keyof typeof NORMALIZATIONS;
}

export const NORMALIZATIONS = { "minus-one-to-one": MINUS_ONE_TO_ONE, "zero-to-one": ZERO_TO_ONE, imagenet: IMAGENET_NORMALIZATION };

/**
 * The spec for `opts`: a preset by name; or a folder/URL, described by the preset whose name is
 * the folder's (`.../mobilenet_v1_0.75_224`), else by the options, its format read from model.json.
 * When that is `base`'s backbone (the dataset preset's), `base` is kept with its own settings
 * (Flickr8k's whole-image resize), only its files found elsewhere. A folder that is neither a
 * preset nor fully described is an error listing what is missing.
 */
export function backboneSpecFrom(opts: BackboneOptions, base?: BackboneSpec): BackboneSpec {
  const preset = BACKBONES[opts.backbone];
  const fromFolder = preset ? undefined : opts.backbone;
  const named = preset ?? presetNamed(opts.backbone);
  const known = base && (named?.name === base.name || base.source === opts.backbone) ? base : named;
  const spec: Partial<BackboneSpec> = { ...known, ...(fromFolder ? { source: fromFolder } : {}) };
  if (opts.source) spec.source = opts.source;
  if (opts.name) spec.name = opts.name;
  if (opts.format) spec.format = opts.format;
  if (opts.featureLayer) spec.featureLayer = opts.featureLayer;
  if (opts.inputSize) spec.inputSize = opts.inputSize;
  if (opts.resize) spec.resize = opts.resize;
  if (opts.normalization) spec.normalization = NORMALIZATIONS[opts.normalization];
  if (fromFolder && !known) {
    spec.name ??= modelName(fromFolder);
    const missing = (["inputSize", "normalization"] as const).filter((k) => spec[k] === undefined);
    if (missing.length) {
      throw new Error(
        `${fromFolder}: not a known backbone (${Object.keys(BACKBONES).join(", ")}); say what it is with ` +
          `--input-size N --normalization ${Object.keys(NORMALIZATIONS).join("|")} [--feature-layer NAME] [--backbone-name NAME]`,
      );
    }
  }
  return spec as BackboneSpec;
}

/** The preset whose name is the folder's own (as Google's model folders are named). */
function presetNamed(source: string): BackboneSpec | undefined {
  const name = modelName(source);
  return Object.values(BACKBONES).find((spec) => spec.name === name);
}

/** A model's name from its folder: `/models/mobilenet_v1_0.75_224/model.json` → `mobilenet_v1_0.75_224`. */
function modelName(source: string): string {
  const parts = source.replace(/[?#].*$/, "").split(/[\\/]+/).filter(Boolean);
  if (parts.length && /\.json$/i.test(parts[parts.length - 1])) parts.pop();
  return parts[parts.length - 1] ?? "backbone";
}

/** What makes two backbones give the same features. A feature cache stores it and refuses any other. */
export interface BackboneFingerprint {
  name: string;
  format: "layers" | "graph";
  featureLayer: string;
  inputSize: number;
  normalization: Normalization;
  featureDim: number;
  /** SHA-256 of model.json + shards: the same weights, wherever they were loaded from. */
  weightsSha256: string;
}

/** A pretrained backbone, frozen: features are computed in inference mode and nothing is trained. */
export class PretrainedBackbone implements MapBackbone {
  readonly frozen = true;
  readonly trainableVariables: tf.Variable[] = [];

  private constructor(
    readonly spec: BackboneSpec,
    readonly fingerprint: BackboneFingerprint,
    /** The local folder the model was loaded from (a download's cache folder): a worker thread loads the same files. */
    readonly folder: string,
    private readonly run: (images: tf.Tensor4D) => tf.Tensor,
    private readonly model: { dispose(): void },
    private readonly split: MapSplit | null,
  ) {}

  get name(): string {
    return this.spec.name;
  }
  get inputSize(): number {
    return this.spec.inputSize;
  }
  get resize(): number | undefined {
    return this.spec.resize;
  }
  get normalization(): Normalization {
    return this.spec.normalization;
  }
  get featureDim(): number {
    return this.fingerprint.featureDim;
  }

  /**
   * Loads the model (downloading it into the cache on first use), cuts it at the feature layer and
   * freezes it. A spec without a format takes model.json's; one that says another is an error.
   */
  static async load(given: BackboneSpec, cacheRoot = DEFAULT_MODEL_CACHE): Promise<PretrainedBackbone> {
    const dir = await modelFolder(given.source, given.name, cacheRoot);
    const format = modelJsonFormat(dir) ?? given.format;
    if (given.format && format !== given.format) {
      throw new Error(`${dir}/model.json: a ${format} model, but backbone "${given.name}" is declared ${given.format} (format: "${format}")`);
    }
    const spec = { ...given, format };
    const { run, model, featureLayer, split } =
      spec.format === "layers" ? await cutLayersModel(dir, spec.featureLayer, spec.inputSize) : await cutGraphModel(dir, spec.featureLayer, spec.inputSize);
    const probe = tf.tidy(() => flatten(run(tf.zeros([1, spec.inputSize, spec.inputSize, 3]))));
    const featureDim = probe.shape[1];
    probe.dispose();
    if (spec.format === "graph" && !spec.featureLayer && (featureDim === 1000 || featureDim === 1001)) {
      throw new Error(
        `${dir}/model.json: the model's output has ${featureDim} values, an ImageNet classifier's scores, not features; ` +
          `name the feature node (featureLayer, --feature-layer), e.g. the global pool before the classifier`,
      );
    }
    const fingerprint: BackboneFingerprint = {
      name: spec.name,
      format: spec.format,
      featureLayer,
      inputSize: spec.inputSize,
      normalization: spec.normalization,
      featureDim,
      weightsSha256: hashModelFolder(dir),
    };
    return new PretrainedBackbone(spec, fingerprint, dir, run, model, split);
  }

  features(images: tf.Tensor4D): tf.Tensor2D {
    const [, h, w] = images.shape;
    if (h !== this.inputSize || w !== this.inputSize) {
      throw new Error(`backbone ${this.name}: expects ${this.inputSize}x${this.inputSize} images, got ${h}x${w}`);
    }
    return tf.tidy(() => flatten(this.run(images)));
  }

  get mapLayer(): string {
    return this.mapSplit().layer;
  }

  get mapGeometry(): MapGeometry {
    return this.mapSplit().geometry;
  }

  featureMap(images: tf.Tensor4D): tf.Tensor4D {
    return this.mapSplit().map(images);
  }

  featuresOfMap(map: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => flatten(this.mapSplit().head(map)));
  }

  dispose(): void {
    this.model.dispose();
  }

  private mapSplit(): MapSplit {
    if (this.split) return this.split;
    throw new Error(
      `backbone ${this.name}: its feature layer "${this.fingerprint.featureLayer}" is neither a convolutional map nor a global ` +
        `average pool over one, so there is no feature map for Grad-CAM`,
    );
  }
}

/** A spatial feature map [batch, h, w, c] becomes one vector per image [batch, h*w*c]. */
function flatten(t: tf.Tensor): tf.Tensor2D {
  return t.reshape([t.shape[0], -1]);
}

/**
 * A backbone cut at its last convolutional feature map: `map` runs up to it, `head` does the rest
 * (a global average pool, or nothing when the feature layer is the map itself).
 */
interface MapSplit {
  layer: string;
  geometry: MapGeometry;
  map: (images: tf.Tensor4D) => tf.Tensor4D;
  head: (map: tf.Tensor4D) => tf.Tensor;
}

interface CutModel {
  run: (images: tf.Tensor4D) => tf.Tensor;
  model: { dispose(): void };
  featureLayer: string;
  /** Null when the feature layer is not a map or a global average pool over one. */
  split: MapSplit | null;
}

const globalAveragePool = (map: tf.Tensor4D): tf.Tensor => map.mean([1, 2]);
const asIs = (map: tf.Tensor4D): tf.Tensor => map;

async function cutLayersModel(dir: string, featureLayer: string | undefined, inputSize: number): Promise<CutModel> {
  const model = await tf.loadLayersModel(fileSystemHandler(dir));
  model.trainable = false; // marks every weight variable non-trainable: optimizers and tf.grads skip them
  const name = featureLayer ?? model.layers[model.layers.length - 1].name;
  const layer = model.layers.find((l) => l.name === name);
  if (!layer) {
    const names = model.layers.map((l) => l.name);
    throw new Error(`${dir}/model.json: no layer "${name}" (the last layers are ${names.slice(-8).join(", ")})`);
  }
  const where = mapOf(model, layer, inputSize);
  // The fast path: batch norm folded into fused convolutions (folded-cnn.ts), when the model allows.
  const folded = foldLayersModel(model, name);
  if (folded) {
    const split = where && { ...where, map: folded.map, head: folded.pooled ? globalAveragePool : asIs };
    return { run: folded.run, model: { dispose: () => (folded.dispose(), model.dispose()) }, featureLayer: name, split };
  }
  // training: false keeps batch norm on its ImageNet statistics and dropout off.
  const cutAt = (output: tf.SymbolicTensor) => {
    const cut = tf.model({ inputs: model.inputs, outputs: output });
    return (images: tf.Tensor4D) => cut.apply(images, { training: false }) as tf.Tensor;
  };
  const run = cutAt(layer.output as tf.SymbolicTensor);
  const split = where && { layer: where.layer, geometry: where.geometry, map: cutAt(where.output) as MapSplit["map"], head: where.pooled ? globalAveragePool : asIs };
  return { run, model, featureLayer: name, split };
}

/**
 * A layers model's feature map: the feature layer's output when it is 4-D, or the map that a
 * GlobalAveragePooling2D feature layer reads; null otherwise (no Grad-CAM then).
 */
function mapOf(model: tf.LayersModel, layer: tf.layers.Layer, inputSize: number) {
  const pooled = layer.getClassName() === "GlobalAveragePooling2D";
  const output = (pooled ? layer.input : layer.output) as tf.SymbolicTensor;
  if (output.shape.length !== 4) return null;
  const mapLayer = pooled ? inboundLayerName(layer) : layer.name;
  const gridLayers = kerasGridLayers(model, mapLayer, inputSize);
  const geometry = gridLayers ? geometryOf(gridLayers) : evenGeometry(inputSize, output.shape[1]!);
  return { layer: mapLayer, geometry, output, pooled };
}

/** The name of the layer whose output `layer` reads. */
function inboundLayerName(layer: tf.layers.Layer): string {
  return (layer.input as tf.SymbolicTensor).sourceLayer.name;
}

async function cutGraphModel(dir: string, featureLayer: string | undefined, inputSize: number): Promise<CutModel> {
  const model = await tf.loadGraphModel(fileSystemHandler(dir));
  const name = featureLayer ?? model.outputs[0].name;
  const runTo = (node: string) => (images: tf.Tensor4D) => {
    try {
      return model.execute(images, node) as tf.Tensor;
    } catch (e) {
      throw new Error(`${dir}/model.json: cannot compute node "${node}" (${(e as Error).message})`);
    }
  };
  const split = graphMapSplit(dir, name, runTo);
  if (!split) return { run: runTo(name), model, featureLayer: name, split: null };
  // A graph's layers are not read here: its map is taken as evenly spread over the input (map-geometry.ts).
  const probe = tf.tidy(() => split.map(tf.zeros([1, inputSize, inputSize, 3])));
  const geometry = evenGeometry(inputSize, probe.shape[1]);
  probe.dispose();
  return { run: runTo(name), model, featureLayer: name, split: { ...split, geometry } };
}

/**
 * The split at a graph model's feature map, read from model.json's nodes: a global pool (a Mean,
 * as TF-Slim's `global_pool`) splits at the node it reads; a 4-D node is the map itself.
 */
function graphMapSplit(dir: string, name: string, runTo: (node: string) => (images: tf.Tensor4D) => tf.Tensor): Omit<MapSplit, "geometry"> | null {
  const json = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8")) as { modelTopology: { node?: GraphNode[] } };
  const node = json.modelTopology.node?.find((n) => n.name === name.replace(/:0$/, ""));
  if (node?.op === "Mean" && node.input?.length) {
    const input = node.input[0];
    return { layer: input, map: runTo(input) as MapSplit["map"], head: globalAveragePool };
  }
  if (node && /^(Relu|Relu6|Conv2D|DepthwiseConv2dNative|FusedConv2D|FusedDepthwiseConv2dNative)$/.test(node.op)) {
    return { layer: name, map: runTo(name) as MapSplit["map"], head: asIs };
  }
  return null;
}

/** One node of a graph model's model.json. */
interface GraphNode {
  name: string;
  op: string;
  input?: string[];
}
