/**
 * Packs a trained run into a model folder that ships in git (lib/inference/model-folder.ts):
 *
 *   npm run pack-model -- --checkpoint runs/flickr8k --backbone ../models/mobilenet_v1_0.75_224 \
 *                         --out models/flickr8k-mobilenet [--backbone-quantization uint8] [--quantization uint8]
 *
 * --checkpoint takes a run folder (its best checkpoint by val CIDEr) or a checkpoint folder.
 * --backbone is the tfjs layers model the run was trained with. Prints every file and its size.
 */
import { parseArgs } from "node:util";
import { initBackend } from "../lib/runtime/backend";
import { packModel } from "../lib/inference/model-folder";
import type { Quantization } from "../lib/io/quantize";

const QUANTIZATIONS = ["float32", "float16", "uint8"];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      checkpoint: { type: "string" },
      backbone: { type: "string" },
      out: { type: "string" },
      quantization: { type: "string", default: "uint8" },
      "backbone-quantization": { type: "string", default: "uint8" },
    },
  });
  if (!values.checkpoint || !values.backbone || !values.out) throw new Error("--checkpoint, --backbone and --out are required");
  for (const q of [values.quantization, values["backbone-quantization"]]) {
    if (!QUANTIZATIONS.includes(q)) throw new Error(`a quantization must be one of ${QUANTIZATIONS.join(", ")}, got ${q}`);
  }
  await initBackend({ log: (line) => console.error(line) });
  const sizes = await packModel({
    checkpoint: values.checkpoint,
    backboneDir: values.backbone,
    out: values.out,
    quantization: { backbone: values["backbone-quantization"] as Quantization, captioner: values.quantization as Quantization },
  });
  let total = 0;
  for (const [file, bytes] of Object.entries(sizes)) {
    console.log(`${(bytes / 1e6).toFixed(2).padStart(7)} MB  ${file}`);
    total += bytes;
  }
  console.log(`${(total / 1e6).toFixed(2).padStart(7)} MB  in all`);
}

main().catch((error: Error) => {
  console.error(`pack-model: ${error.message}`);
  process.exit(1);
});
