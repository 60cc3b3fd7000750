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
import { loadCaptions } from "../lib/coco";
import { tokenize } from "../lib/tokenizer";
import { Vocabulary } from "../lib/vocabulary";

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

/** Runs `work` once and returns its result with the seconds it took. */
async function timed<T>(work: () => T | Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  const result = await work();
  return [result, Number(process.hrtime.bigint() - start) / 1e9];
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
  const [, generateS] = await timed(() => generate(file));
  const megabytes = fs.statSync(file).size / 2 ** 20;

  const [text, readS] = await timed(() => fs.promises.readFile(file, "utf8"));
  const [, jsonParseS] = await timed(() => JSON.parse(text)); // JSON.parse alone, for comparison
  const [coco, loadS] = await timed(() => loadCaptions(file, "images/train2014"));
  const [tokens, tokenizeS] = await timed(() => coco.captions.map((c) => tokenize(c.caption)));
  const [vocab, vocabS] = await timed(() => Vocabulary.build(coco.captions.map((c) => c.caption), { threshold: 5 }));

  const result = {
    name: "parse_captions",
    file,
    megabytes: +megabytes.toFixed(1),
    images: coco.images.length,
    captions: coco.captions.length,
    generate_s: +generateS.toFixed(2),
    read_s: +readS.toFixed(2),
    json_parse_s: +jsonParseS.toFixed(2),
    load_check_index_s: +loadS.toFixed(2),
    tokenize_s: +tokenizeS.toFixed(2),
    tokens: tokens.reduce((sum, t) => sum + t.length, 0),
    vocabulary_build_s: +vocabS.toFixed(2),
    vocabulary_size: vocab.size,
  };
  if (!values.keep) fs.rmSync(file);
  if (values.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(`${file}: ${result.megabytes} MB, ${result.images} images, ${result.captions} captions`);
    console.log(`read ${result.read_s} s; JSON.parse alone ${result.json_parse_s} s`);
    console.log(`loadCaptions (read + parse + check + index): ${result.load_check_index_s} s`);
    console.log(`tokenize all captions: ${result.tokenize_s} s; Vocabulary.build (tokenizes again): ${result.vocabulary_build_s} s`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
