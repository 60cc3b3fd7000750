/**
 * Pretrained tfjs models on disk: download once, load offline forever after.
 *
 * A tfjs model is a folder: `model.json` (topology + a weights manifest naming the shard
 * files) and the binary shards. `modelFolder(source, name)` turns a model's source into such
 * a folder: a local path is used as it is; an http(s) URL is downloaded into
 * `<cacheRoot>/<name>/` the first time (into a temporary folder renamed into place, so a
 * broken download never looks like a cached model) and read from there afterwards, with no
 * network. `fileSystemHandler(dir)` then gives tfjs the folder's files, on any backend
 * (tfjs-node's `file://` handler exists only with tfjs-node).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { nanoid } from "nanoid";
import { projectPath, projectRoot } from "../runtime/paths";
import { readJson } from "./json-file";

/** Default parent folder of downloaded models: data/models in the project, wherever the code runs from. */
export const DEFAULT_MODEL_CACHE = projectPath("data", "models");

/** Written beside a downloaded model: where it came from, so a cache made from another URL is never reused. */
const SOURCE_FILE = "source.json";

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * The URL of `model.json` for a model URL. TF Hub model pages serve their files with
 * `?tfjs-format=file` (as tfjs's own `fromTFHub` loader asks); other URLs may name
 * `model.json` or the folder holding it.
 */
export function modelJsonUrl(url: string): string {
  if (/^https?:\/\/(tfhub\.dev|www\.kaggle\.com)\//i.test(url)) return `${url.replace(/\/$/, "")}/model.json?tfjs-format=file`;
  if (/\.json(\?.*)?$/i.test(url)) return url;
  return `${url.replace(/\/$/, "")}/model.json`;
}

/**
 * Returns the local folder holding `model.json` for `source`, downloading an http(s) source into
 * `<cacheRoot>/<name>/` unless it is already there.
 */
export async function modelFolder(source: string, name: string, cacheRoot = DEFAULT_MODEL_CACHE): Promise<string> {
  if (!isUrl(source)) return localModelFolder(source);
  const dir = path.join(cacheRoot, name);
  if (fs.existsSync(path.join(dir, SOURCE_FILE))) {
    const cached = (readJson(path.join(dir, SOURCE_FILE)) as { url?: string }).url;
    if (cached !== source) {
      throw new Error(
        `${dir}: this cached model was downloaded from ${cached}, not ${source}; ` +
          `give the new model another name or delete the folder`,
      );
    }
    return dir;
  }
  if (fs.existsSync(dir)) throw new Error(`${dir}: exists but was not downloaded here (no ${SOURCE_FILE}); move it away or pass its path as the source`);
  await downloadModel(source, dir);
  return dir;
}

/**
 * The folder of a local model. A relative path is the project's (as `npm run` gives it, from the
 * project root), so a checkpoint trained from the command line loads in a notebook too, whose
 * working folder is notebooks/.
 */
function localModelFolder(source: string): string {
  const given = source.endsWith(".json") ? path.dirname(source) : source;
  const dir = path.resolve(projectRoot(), given);
  if (!fs.existsSync(path.join(dir, "model.json"))) throw new Error(`${source}: no model.json here`);
  return dir;
}

/**
 * Downloads the model at `url` (model.json and every shard it names) into `dir`. Files are
 * fetched into a temporary sibling folder, checked against the weights manifest, and the folder
 * is renamed to `dir` only when complete.
 */
export async function downloadModel(url: string, dir: string): Promise<void> {
  const jsonUrl = modelJsonUrl(url);
  const tmp = path.join(path.dirname(dir), `.${path.basename(dir)}.partial-${nanoid(6)}`);
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const modelJson = await fetchBytes(jsonUrl);
    fs.writeFileSync(path.join(tmp, "model.json"), modelJson);
    const manifest = parseModelJson(modelJson.toString("utf8"), jsonUrl).weightsManifest ?? [];
    for (const file of manifest.flatMap((group) => group.paths)) {
      fs.writeFileSync(path.join(tmp, file), await fetchBytes(shardUrl(jsonUrl, file)));
    }
    checkShardSizes(tmp, manifest);
    fs.writeFileSync(path.join(tmp, SOURCE_FILE), JSON.stringify({ url, downloadedAt: new Date().toISOString() }, null, 2));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** A shard's URL: beside model.json, with the same query string (TF Hub needs `?tfjs-format=file` on every file). */
function shardUrl(jsonUrl: string, file: string): string {
  const u = new URL(jsonUrl);
  const shard = new URL(file, u);
  shard.search = u.search;
  return shard.toString();
}

async function fetchBytes(url: string): Promise<Buffer> {
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    return Buffer.from(await response.arrayBuffer()); // a connection cut mid-body rejects here
  } catch (e) {
    throw new Error(`${url}: download failed (${(e as Error).message}${causeOf(e)})`);
  }
}

function causeOf(e: unknown): string {
  const cause = (e as { cause?: { message?: string } }).cause;
  return cause?.message ? `: ${cause.message}` : "";
}

/** A truncated shard would otherwise surface later as an obscure tensor-size error inside tfjs. */
function checkShardSizes(dir: string, manifest: tf.io.WeightsManifestConfig): void {
  const expected = weightBytes(tf.io.getWeightSpecs(manifest));
  if (expected === null) return; // string weights have no fixed size
  const files = manifest.flatMap((group) => group.paths);
  const actual = files.reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
  if (actual !== expected) {
    throw new Error(`${dir}: the shards hold ${actual} bytes but the weights manifest needs ${expected}`);
  }
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

function weightBytes(specs: tf.io.WeightsManifestEntry[]): number | null {
  let total = 0;
  for (const spec of specs) {
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    if (!(dtype in BYTES_PER_ELEMENT)) return null;
    total += spec.shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype];
  }
  return total;
}

function parseModelJson(text: string, where: string): tf.io.ModelJSON {
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: model.json is not valid JSON (${(e as Error).message})`);
  }
  if (json.modelTopology == null) throw new Error(`${where}: model.json has no modelTopology`);
  return json;
}

/** A tfjs IOHandler that loads the model in `dir` (model.json + the shards it names) from disk. */
export function fileSystemHandler(dir: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = path.join(dir, "model.json");
      if (!fs.existsSync(jsonPath)) throw new Error(`${jsonPath}: file not found`);
      const modelJson = parseModelJson(fs.readFileSync(jsonPath, "utf8"), jsonPath);
      return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        const shards = manifest.flatMap((group) => group.paths).map((file) => readShard(dir, file));
        return [tf.io.getWeightSpecs(manifest), tf.io.concatenateArrayBuffers(shards)];
      });
    },
  };
}

function readShard(dir: string, file: string): ArrayBuffer {
  const shardPath = path.join(dir, file);
  if (!fs.existsSync(shardPath)) throw new Error(`${shardPath}: weight shard missing (named by ${dir}/model.json)`);
  const bytes = fs.readFileSync(shardPath);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** SHA-256 of model.json and every shard in manifest order: the identity of the weights, wherever they live. */
export function hashModelFolder(dir: string): string {
  const hash = createHash("sha256");
  const jsonPath = path.join(dir, "model.json");
  const json = fs.readFileSync(jsonPath);
  hash.update(json);
  const manifest = parseModelJson(json.toString("utf8"), jsonPath).weightsManifest ?? [];
  for (const file of manifest.flatMap((group) => group.paths)) hash.update(fs.readFileSync(path.join(dir, file)));
  return hash.digest("hex");
}

/**
 * Whether the model in `dir` is a layers model (Keras topology) or a graph model (TensorFlow
 * nodes), from its model.json; null if the file does not say.
 */
export function modelJsonFormat(dir: string): "layers" | "graph" | null {
  const jsonPath = path.join(dir, "model.json");
  if (!fs.existsSync(jsonPath)) throw new Error(`${jsonPath}: file not found`);
  const json = parseModelJson(fs.readFileSync(jsonPath, "utf8"), jsonPath) as tf.io.ModelJSON & { modelTopology: Record<string, unknown> };
  if (json.format === "layers-model" || "class_name" in json.modelTopology || "model_config" in json.modelTopology) return "layers";
  if (json.format === "graph-model" || "node" in json.modelTopology) return "graph";
  return null;
}
