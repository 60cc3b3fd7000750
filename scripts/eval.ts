/**
 * Scores a COCO results file against reference captions, as the official COCO caption
 * evaluation does (BLEU-1..4, ROUGE-L, CIDEr-D; METEOR and SPICE are not computed).
 *
 *   npm run eval -- --refs data/cocoapi/annotations/captions_val2014.json --results results.json [--json]
 *
 * Only the images present in the results are scored. Prints one "Name: value" line per
 * metric (3 decimals, as pycocoevalcap prints them), or with --json one JSON object
 * with the official key names and full precision.
 */
import { parseArgs } from "node:util";
import { METRIC_NAMES, evaluateFiles } from "../lib/evaluation/metrics/evaluate";

const USAGE = "usage: npm run eval -- --refs COCO_CAPTIONS.json --results RESULTS.json [--json]";

function main(): void {
  const { values } = parseArgs({
    options: {
      refs: { type: "string" },
      results: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.refs === undefined || values.results === undefined) throw new Error(`--refs and --results are required\n${USAGE}`);

  const { scores, perImage } = evaluateFiles(values.refs, values.results);
  if (values.json) {
    console.log(JSON.stringify(scores));
  } else {
    console.error(`scored ${perImage.size} images`);
    for (const name of METRIC_NAMES) console.log(`${name}: ${scores[name].toFixed(3)}`);
  }
}

try {
  main();
} catch (error) {
  console.error(`eval: ${(error as Error).message}`);
  process.exitCode = 1;
}
