/**
 * The backbone flags that `npm run train` and `npm run features` share:
 *
 *   --backbone NAME|DIR|URL   a preset (mobilenet_v1_0.75, ...) or a tfjs model folder / URL;
 *                             a folder named like a preset (…/mobilenet_v1_0.75_224) is that preset
 *   --backbone-source DIR|URL where a preset's files are (a local copy)
 *   --backbone-name NAME      the name that labels its feature caches and checkpoints
 *   --backbone-format layers|graph
 *   --feature-layer NAME      layer (layers model) or node (graph model) to cut at
 *   --input-size N            side of the square input, in pixels
 *   --resize N                shorter side before the centre crop (N = input size: the whole image)
 *   --normalization minus-one-to-one|zero-to-one|imagenet
 */
import { backboneSpecFrom, NORMALIZATIONS, type BackboneOptions, type BackboneSpec } from "../lib/model/backbone";

export const BACKBONE_FLAGS = {
  backbone: { type: "string" },
  "backbone-source": { type: "string" },
  "backbone-name": { type: "string" },
  "backbone-format": { type: "string" },
  "feature-layer": { type: "string" },
  "input-size": { type: "string" },
  resize: { type: "string" },
  normalization: { type: "string" },
} as const;

type Values = { [K in keyof typeof BACKBONE_FLAGS]?: string };

/** The backbone the flags describe, starting from `base` (the preset's); undefined when no flag is given. */
export function backboneFromFlags(values: Values, base?: BackboneSpec): BackboneSpec | undefined {
  const given = Object.keys(BACKBONE_FLAGS).some((k) => values[k as keyof Values] !== undefined);
  if (!given) return undefined;
  const format = values["backbone-format"];
  if (format !== undefined && format !== "layers" && format !== "graph") throw new Error(`--backbone-format must be layers or graph, got ${format}`);
  const normalization = values.normalization;
  if (normalization !== undefined && !(normalization in NORMALIZATIONS)) {
    throw new Error(`--normalization must be one of ${Object.keys(NORMALIZATIONS).join(", ")}, got ${normalization}`);
  }
  const opts: BackboneOptions = {
    backbone: values.backbone ?? base?.source ?? "",
    source: values["backbone-source"],
    name: values["backbone-name"],
    format,
    featureLayer: values["feature-layer"],
    inputSize: positive("input-size", values["input-size"]),
    resize: positive("resize", values.resize),
    normalization: normalization as BackboneOptions["normalization"],
  };
  if (!opts.backbone) throw new Error("--backbone is needed to describe a backbone");
  return backboneSpecFrom(opts, base);
}

function positive(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got ${text}`);
  return n;
}
