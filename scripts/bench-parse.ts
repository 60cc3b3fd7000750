/**
 * How long does a file the size of captions_train2014.json (82,783 images, 414,113
 * captions) take to read, parse, check and index? And to tokenize and build a vocabulary?
 *
 *     npx tsx scripts/bench-parse.ts [--out /tmp/captions_train2014_like.json] [--keep] [--json]
 *
 * Generates the file (seeded, with the fields and caption lengths of the real one), then
 * times each stage once. Timings on a shared machine are noisy: run it twice.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { loadCaptions } from "../lib/data/coco";
import { tokenizeForVocabulary } from "../lib/data/tokenizer";
import { Vocabulary } from "../lib/data/vocabulary";

const IMAGES = 82_783;
const CAPTIONS = 414_113;

const WORDS = (
  "a an the man woman person people dog cat horse bus train plate table pizza street " +
  "sitting standing riding holding walking parked next to on in of with near at top " +
  "red white blue green black large small two three young old front field water grass"
).split(" ");

/** A small seeded generator (mulberry32), so the file is the same on every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A caption of 8 to 16 words, capitalised, with a final period three times out of four, as in COCO. */
function caption(random: () => number): string {
  const n = 8 + Math.floor(random() * 9);
  const words = Array.from({ length: n }, () => WORDS[Math.floor(random() * WORDS.length)]);
  words[0] = words[0][0].toUpperCase() + words[0].slice(1);
  return words.join(" ") + (random() < 0.75 ? "." : "");
}

function generate(file: string): void {
  const random = rng(2014);
  const images = Array.from({ length: IMAGES }, (_, i) => ({
    license: 1 + (i % 8),
    file_name: `COCO_train2014_${String(i + 1).padStart(12, "0")}.jpg`,
    coco_url: `http://images.cocodataset.org/train2014/COCO_train2014_${String(i + 1).padStart(12, "0")}.jpg`,
    height: 480,
    width: 640,
    date_captured: "2013-11-14 16:28:13",
    flickr_url: `http://farm4.staticflickr.com/3153/${2970773875 + i}_164f0c0b83_z.jpg`,
    id: i + 1,
  }));
  // Five captions per image, a few images get a sixth or seventh (as in COCO), in shuffled order.
  const annotations = Array.from({ length: CAPTIONS }, (_, i) => ({
    image_id: i < IMAGES * 5 ? (i % IMAGES) + 1 : 1 + Math.floor(random() * IMAGES),
    id: i + 1,
    caption: caption(random),
  }));
  const json = { info: { description: "generated, the size of captions_train2014.json" }, images, licenses: [], annotations };
  fs.writeFileSync(file, JSON.stringify(json));
}

/** Seconds of wall-clock time and of CPU time (this process) that a stage took. */
interface Timing {
  wall_s: number;
  cpu_s: number;
}

/**
 * Runs `work` once and returns its result and timing. CPU time is reported too because
 * the machine may be shared: then wall time includes waiting for a core.
 */
async function timed<T>(work: () => T | Promise<T>): Promise<[T, Timing]> {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const result = await work();
  const used = process.cpuUsage(cpu);
  const wall_s = Number(process.hrtime.bigint() - start) / 1e9;
  return [result, { wall_s: +wall_s.toFixed(2), cpu_s: +((used.user + used.system) / 1e6).toFixed(2) }];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: path.join(os.tmpdir(), "captions_train2014_like.json") },
      keep: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
  });
  const file = values.out!;
  const [, generate_] = await timed(() => generate(file));
  const megabytes = fs.statSync(file).size / 2 ** 20;

  const [coco, load] = await timed(() => loadCaptions(file, "images/train2014"));
  // For comparison: reading alone and JSON.parse alone (the rest of `load` is the checks and the index).
  const [text, read] = await timed(() => fs.promises.readFile(file, "utf8"));
  const [, jsonParse] = await timed(() => void JSON.parse(text));
  const [tokens, tokenize_] = await timed(() => coco.captions.map((c) => tokenizeForVocabulary(c.caption)));
  const [vocab, vocabulary] = await timed(() => Vocabulary.build(coco.captions.map((c) => c.caption), { threshold: 5 }));

  const result = {
    name: "parse_captions",
    file,
    megabytes: +megabytes.toFixed(1),
    images: coco.images.length,
    captions: coco.captions.length,
    generate: generate_,
    load_check_index: load,
    read,
    json_parse: jsonParse,
    tokenize: tokenize_,
    tokens: tokens.reduce((sum, t) => sum + t.length, 0),
    vocabulary_build: vocabulary,
    vocabulary_size: vocab.size,
  };
  if (!values.keep) fs.rmSync(file);
  if (values.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`${file}: ${result.megabytes} MB, ${result.images} images, ${result.captions} captions`);
    const show = (t: Timing) => `${t.wall_s} s (CPU ${t.cpu_s} s)`;
    console.log(`loadCaptions (read + JSON.parse + check + index): ${show(load)}`);
    console.log(`  of which read: ${show(read)}, JSON.parse: ${show(jsonParse)}`);
    console.log(`tokenize every caption: ${show(tokenize_)}; Vocabulary.build (tokenizes again): ${show(vocabulary)}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
