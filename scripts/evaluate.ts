/**
 * Captions every image of a split with a trained model and scores the captions: greedy, beam
 * search and a blind caption (the same sentence for every image: what the text alone earns).
 *
 *   npm run evaluate -- --model models/flickr8k-mobilenet --data flickr8k --data-root ../flickr8k --split test
 *   npm run evaluate -- --model runs/flickr8k --features --beam 1,3 --out runs/flickr8k/test-eval
 *
 * --model takes a shipped model folder, a run folder (its best checkpoint by val CIDEr) or a
 * checkpoint. Images go through the whole model from their pixels, as a user's photos do; with
 * --features the split's cached backbone features are read instead (the training's cache:
 * fast, and only for the float32 backbone they were made with). --out writes the references and
 * each decoder's results in the COCO formats, so that `npm run eval -- --refs .. --results ..`
 * scores them again, independently. Beside the scores it describes the captions (lib/evaluation/
 * caption-stats.ts: length, distinct captions, unfinished endings, repeated words, <unk>), and on
 * the synthetic scenes their scene precision and recall.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { initBackend } from "../lib/runtime/backend";
import { Captioner } from "../lib/inference/captioner";
import type { Split } from "../lib/data/coco";
import { PRESETS, presetFor } from "../lib/train/config";
import { loadSplit, type SplitData } from "../lib/data/dataset";
import { evaluateSplit, scoreCaptions } from "../lib/evaluation/evaluate-split";
import { imageSource } from "../lib/features/image-source";
import { METRIC_NAMES, type CocoScores } from "../lib/evaluation/metrics/evaluate";
import { captionStats, type CaptionStats } from "../lib/evaluation/caption-stats";
import { danglingEndsFlag } from "./dangling-ends-arg";

const USAGE = `usage: npm run evaluate -- --model DIR [--data ${Object.keys(PRESETS).join("|")}] [--data-root DIR]
       [--split val|test] [--beam 1,3] [--alpha A] [--allow-unk] [--dangling-ends allow|forbid] [--blind "a caption"] [--features] [--out DIR] [--json]`;

function parse() {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      data: { type: "string", default: "flickr8k" },
      "data-root": { type: "string" },
      split: { type: "string", default: "test" },
      beam: { type: "string", default: "1,3" },
      alpha: { type: "string", default: "0" },
      blind: { type: "string" },
      features: { type: "boolean", default: false },
      "allow-unk": { type: "boolean", default: false },
      "dangling-ends": { type: "string" },
      out: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  if (!values.model) throw new Error(`--model is required\n${USAGE}`);
  const preset = presetFor(values.data, "--data");
  if (values.split !== "val" && values.split !== "test") throw new Error(`--split must be val or test, got ${values.split}`);
  const beams = values.beam.split(",").map(Number);
  if (!beams.every((k) => Number.isInteger(k) && k >= 1)) throw new Error(`--beam must list positive integers, got ${values.beam}`);
  const noDanglingEnd = danglingEndsFlag("dangling-ends", values["dangling-ends"]);
  return { ...values, noDanglingEnd, model: values.model, preset, split: values.split as Split, beams, alpha: Number(values.alpha), dataRoot: values["data-root"] ?? preset.dataRoot };
}

type Row = { decoder: string; seconds: number } & CocoScores & { scenePrecision?: number; sceneRecall?: number; stats?: CaptionStats };

async function main(): Promise<void> {
  const opts = parse();
  if (!opts) return console.log(USAGE);
  await initBackend({ log: (line) => console.error(line) });
  const model = await Captioner.load(opts.model, undefined, "best");
  const split = await loadSplit(opts.dataRoot, opts.split, () => {});
  const data = await imageSource(model, split.index, opts.split, { augment: false, featureCache: opts.features, cacheDir: opts.preset.featureDir });
  const rows: Row[] = [];
  try {
    for (const beamSize of opts.beams) {
      const decoder = beamSize === 1 ? "greedy" : `beam${beamSize}`;
      const started = performance.now();
      const evaluation = await evaluateSplit(model, split, data, { beamSize, alpha: opts.alpha, maxLength: opts.preset.maxCaptionLength, allowUnk: opts["allow-unk"], noDanglingEnd: opts.noDanglingEnd });
      const seconds = (performance.now() - started) / 1000;
      const scene = evaluation.scene ? { scenePrecision: evaluation.scene.precision, sceneRecall: evaluation.scene.recall } : {};
      rows.push({ decoder, seconds, ...evaluation.scores!, ...scene, stats: captionStats(evaluation.results.map((r) => r.caption)) });
      writeResults(opts.out, decoder, evaluation.results);
    }
  } finally {
    await data.close();
    model.dispose();
  }
  if (opts.blind) rows.push(blindRow(split, opts.blind, opts.out));
  if (opts.out) writeRefs(opts.out, split);
  if (opts.json) for (const row of rows) console.log(JSON.stringify(row));
  else printTable(rows, `${opts.split} split of ${opts.dataRoot}, ${split.index.images.length} images`);
}

/** The same caption for every image: the score of knowing the dataset but not the picture. */
function blindRow(split: SplitData, caption: string, out: string | undefined): Row {
  const captions = new Map(split.index.images.map((image) => [image.id, { caption, tokens: [], logProb: 0 }]));
  const evaluation = scoreCaptions(split, captions);
  writeResults(out, "blind", evaluation.results);
  return { decoder: `blind ("${caption}")`, seconds: 0, ...evaluation.scores! };
}

function writeResults(out: string | undefined, decoder: string, results: unknown[]): void {
  if (!out) return;
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, `results-${decoder}.json`), JSON.stringify(results));
}

/** The split's references as a COCO captions file (images carry only id and file_name). */
function writeRefs(out: string, split: SplitData): void {
  const images = split.index.images.map(({ id, file_name }) => ({ id, file_name }));
  const annotations = split.index.captions.map(({ id, image_id, caption }) => ({ id, image_id, caption }));
  fs.writeFileSync(path.join(out, "refs.json"), JSON.stringify({ images, annotations }));
}

function printTable(rows: Row[], title: string): void {
  console.log(title);
  console.log(["decoder".padEnd(40), ...METRIC_NAMES.map((n) => n.padStart(8)), "seconds".padStart(8)].join(" "));
  for (const row of rows) {
    const cells = METRIC_NAMES.map((n) => row[n].toFixed(3).padStart(8));
    console.log([row.decoder.padEnd(40), ...cells, row.seconds.toFixed(1).padStart(8)].join(" "));
  }
  console.log("\nthe captions: mean words, distinct/all, unfinished (ending on 'a', 'in'...), a word twice in a row, <unk>");
  for (const { decoder, stats } of rows) {
    if (!stats) continue;
    const shares = [stats.distinctShare, stats.unfinishedShare, stats.repeatedWordShare, stats.unkShare].map((x) => x.toFixed(3).padStart(8));
    console.log([decoder.padEnd(40), stats.meanWords.toFixed(2).padStart(8), ...shares].join(" "));
  }
}

main().catch((error: Error) => {
  console.error(`evaluate: ${error.message}`);
  process.exit(1);
});
