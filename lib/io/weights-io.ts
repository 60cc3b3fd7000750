/**
 * Saving and loading named tensors in the tfjs format, from plain files.
 *
 * tfjs-node registers a `file://` handler, but the wasm and cpu backends have none, so the
 * checkpoint code uses this small IO handler instead: it writes `<name>.json` (a tfjs
 * weights manifest) and `<name>.bin` (the weight bytes) and reads them back, on any backend.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { readJson } from "./json-file";

/** A tensor with the name it is saved under (tfjs has this type internally but does not export it). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

/** A tfjs IOHandler that keeps weights (no model topology) in `<dir>/<name>.json` + `<dir>/<name>.bin`. */
export function weightsFileHandler(dir: string, name: string): tf.io.IOHandler {
  const manifestPath = path.join(dir, `${name}.json`);
  const binName = `${name}.bin`;
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const data = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
      const manifest = { format: "tfjs-weights", weightsManifest: [{ paths: [binName], weights: artifacts.weightSpecs ?? [] }] };
      fs.writeFileSync(path.join(dir, binName), Buffer.from(data));
      fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 1));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON", weightDataBytes: data.byteLength } };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const manifest = readJson(manifestPath) as { weightsManifest?: tf.io.WeightsManifestConfig };
      const group = manifest.weightsManifest?.[0];
      if (!group || !Array.isArray(group.weights)) throw new Error(`${manifestPath}: no weightsManifest in this file`);
      // One file, or several shards (a shipped model's) that hold the bytes back to back.
      const shards = group.paths.map((file) => {
        const binPath = path.join(dir, file);
        if (!fs.existsSync(binPath)) throw new Error(`${binPath}: weight file missing (named by ${manifestPath})`);
        return fs.readFileSync(binPath);
      });
      const bytes = Buffer.concat(shards);
      const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      return { weightSpecs: group.weights, weightData };
    },
  };
}

/** Writes named tensors through `weightsFileHandler`. */
export async function saveTensors(dir: string, name: string, tensors: NamedTensor[]): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  await weightsFileHandler(dir, name).save!({ weightSpecs: specs, weightData: data });
}

/** Reads named tensors written by `saveTensors`. The caller owns (and disposes) the tensors. */
export async function loadTensors(dir: string, name: string): Promise<tf.NamedTensorMap> {
  const artifacts = await weightsFileHandler(dir, name).load!();
  return tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
}
