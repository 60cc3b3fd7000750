/**
 * COCO caption metrics: the official scores of ../shared/fixtures (every case, every
 * metric, per-image CIDEr), hand-computed edge cases, the PTB tokenizer on hand cases,
 * and `npm run eval` end to end on the real COCO sample.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bleu, bleuStats, closestRefLength } from "../lib/evaluation/metrics/bleu";
import { ciderD } from "../lib/evaluation/metrics/cider";
import { METRIC_NAMES, type CocoScores, evaluateFiles, parseResults, scoreTokenized } from "../lib/evaluation/metrics/evaluate";
import { ptbLex, ptbTokenize, ptbTokenizeCaptions } from "../lib/evaluation/metrics/ptb-tokenize";
import { parseCaptions } from "../lib/data/coco";
import { scoreCaptions } from "../lib/evaluation/evaluate-split";
import { lcsLength, rouge, rougeL } from "../lib/evaluation/metrics/rouge";

const ROOT = path.resolve(__dirname, "..");
const SHARED = path.resolve(__dirname, "../../shared");
const FIXTURE = path.join(SHARED, "fixtures/coco-eval-fixture.json");
const SAMPLE = path.join(SHARED, "coco-sample/annotations/captions_val2014_sample.json");
const fixtureMissing = fs.existsSync(FIXTURE) ? false : "../shared/fixtures/coco-eval-fixture.json not found";
const sampleMissing = fs.existsSync(SAMPLE) ? false : "../shared/coco-sample not found";
const TOKENIZER_FIXTURE = path.join(SHARED, "fixtures/ptb-tokenizer-fixture.json");
const tokenizerFixtureMissing = fs.existsSync(TOKENIZER_FIXTURE) ? false : "../shared/fixtures/ptb-tokenizer-fixture.json not found";
const RAW_EVAL = path.join(SHARED, "fixtures/coco-eval-raw");
const rawEvalMissing = fs.existsSync(path.join(RAW_EVAL, "expected.json")) ? false : "../shared/fixtures/coco-eval-raw not found";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "metrics-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

const TOLERANCE = 1e-4;

interface FixtureCase {
  name: string;
  refs: Record<string, string[]>;
  candidates: Record<string, string>;
  expected: CocoScores;
  expected_per_image?: { CIDEr: Record<string, number> };
}

/** refs / candidates as the scorers take them. */
function maps(refs: Record<string, string[]>, candidates: Record<string, string>) {
  return { refs: new Map(Object.entries(refs)), candidates: new Map(Object.entries(candidates)) };
}

function assertClose(actual: number, expected: number, what: string, tolerance = TOLERANCE): void {
  assert.ok(Number.isFinite(actual), `${what}: got ${actual}`);
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: got ${actual}, expected ${expected}`);
}

test("fixture: every case matches the official BLEU-1..4, ROUGE-L and CIDEr-D to 1e-4", { skip: fixtureMissing }, () => {
  const fixture = JSON.parse(fs.readFileSync(FIXTURE, "utf8")) as { cases: FixtureCase[] };
  assert.ok(fixture.cases.length >= 5, "the fixture has its cases");
  let perImageChecked = 0;
  for (const c of fixture.cases) {
    const { refs, candidates } = maps(c.refs, c.candidates);
    const { scores, perImage } = scoreTokenized(refs, candidates);
    for (const name of METRIC_NAMES) assertClose(scores[name], c.expected[name], `${c.name} ${name}`);
    for (const [id, expected] of Object.entries(c.expected_per_image?.CIDEr ?? {})) {
      assertClose(perImage.get(id)!.CIDEr, expected, `${c.name} CIDEr of image ${id}`);
      perImageChecked++;
    }
  }
  assert.ok(perImageChecked > 0, "some per-image CIDEr was checked");
});

test("BLEU: closest reference length, ties to the shorter one", () => {
  assert.equal(closestRefLength([2, 5, 9], 4), 5);
  assert.equal(closestRefLength([5, 3], 4), 3);
  assert.equal(closestRefLength([7], 1), 7);
});

test("BLEU: clipping by the reference that has the n-gram most often", () => {
  const stats = bleuStats("the the the the", ["the cat", "the the dog"]);
  assert.deepEqual(stats.guess, [4, 3, 2, 1]);
  assert.deepEqual(stats.correct, [2, 1, 0, 0]);
  assert.equal(stats.refLength, 3);
});

test("edge case: a candidate longer than its single reference (no brevity penalty)", () => {
  const refs = new Map([["1", ["a dog"]]]);
  const candidates = new Map([["1", "a dog runs fast"]]);
  const [b1, b2, b3, b4] = bleu(refs, candidates).scores;
  const p = [(2 + 1e-15) / (4 + 1e-9), (1 + 1e-15) / (3 + 1e-9), 1e-15 / (2 + 1e-9), 1e-15 / (1 + 1e-9)];
  assertClose(b1, p[0], "BLEU-1", 1e-12);
  assertClose(b2, Math.sqrt(p[0] * p[1]), "BLEU-2", 1e-12);
  assertClose(b3, Math.cbrt(p[0] * p[1] * p[2]), "BLEU-3", 1e-12);
  assertClose(b4, (p[0] * p[1] * p[2] * p[3]) ** 0.25, "BLEU-4", 1e-15);
  // LCS 2: precision 2/4, recall 2/2; F with beta 1.2.
  assertClose(rougeL("a dog runs fast", ["a dog"]), (2.44 * 0.5 * 1) / (1 + 1.44 * 0.5), "ROUGE-L", 1e-12);
});

test("edge case: a short candidate gets the brevity penalty exp(1 - r/c)", () => {
  const refs = new Map([["1", ["a dog runs in the park"]]]);
  const [b1] = bleu(refs, new Map([["1", "a dog runs"]])).scores;
  assertClose(b1, Math.exp(1 - 6 / 3), "BLEU-1", 1e-9);
});

test("edge case: an empty candidate scores 0 everywhere, without NaN", () => {
  const refs = new Map([
    ["1", ["a dog on a couch", "a dog sleeping"]],
    ["2", ["a cat on a mat", "a small cat"]],
  ]);
  const { scores, perImage } = scoreTokenized(refs, new Map([["1", ""], ["2", "a cat on a mat"]]));
  for (const name of METRIC_NAMES) assert.equal(perImage.get("1")![name], 0, `${name} of the empty candidate`);
  for (const name of METRIC_NAMES) assert.ok(Number.isFinite(scores[name]), `${name} is finite`);
  assert.ok(perImage.get("2")!.CIDEr > 0);
});

test("edge case: CIDEr-D with a single reference per image, by hand", () => {
  // N = 2 images; every n-gram occurs in one image's references, so each weighs log 2.
  // A copied reference: cosine 1 for unigrams and bigrams, 0 (no vector) for 3- and
  // 4-grams, equal lengths: 10 * mean([1, 1, 0, 0]) = 5. A wrong one scores 0.
  const refs = new Map([["a", ["red car"]], ["b", ["blue bus"]]]);
  const copy = ciderD(refs, new Map([["a", "red car"], ["b", "blue bus"]]));
  assertClose(copy.perImage.get("a")!, 5, "copied reference", 1e-12);
  assertClose(copy.score, 5, "mean", 1e-12);
  const wrong = ciderD(refs, new Map([["a", "red car"], ["b", "green tram"]]));
  assert.equal(wrong.perImage.get("b"), 0);
  assertClose(wrong.score, 2.5, "mean with one wrong", 1e-12);
  // Length penalty: one extra word costs exp(-1 / 72) on the orders that still match.
  const longer = ciderD(refs, new Map([["a", "red car red"], ["b", "blue bus"]]));
  assert.ok(longer.perImage.get("a")! < 5 && longer.perImage.get("a")! > 0);
});

test("ROUGE-L: longest common subsequence and best precision / recall over references", () => {
  assert.equal(lcsLength("a b c d e".split(" "), "a c e".split(" ")), 3);
  assert.equal(lcsLength([], ["a"]), 0);
  // Best precision from the first reference (3/3), best recall from the second (2/2).
  const score = rougeL("a red bus", ["a big red bus today", "red bus"]);
  assertClose(score, (2.44 * 1 * 1) / (1 + 1.44 * 1), "ROUGE-L", 1e-12);
  assert.equal(rouge(new Map([["1", ["x y"]]]), new Map([["1", "z"]])).score, 0);
});

test("scorers refuse references and candidates for different images", () => {
  const refs = new Map([["1", ["a dog"]], ["2", ["a cat"]]]);
  assert.throws(() => bleu(refs, new Map([["1", "a dog"]])), /image 2 has references but no candidate/);
  assert.throws(() => ciderD(refs, new Map([["3", "a dog"]])), /image 3 has a candidate but no references/);
});

test("PTB tokenizer: lower case, clitics split like PTB, punctuation dropped", () => {
  const cases: [string, string][] = [
    ["A dog's toy, isn't it?", "a dog 's toy is n't it"],
    ["They don't know; I can't say.", "they do n't know i ca n't say"],
    ["A man cannot ride the grey horse.", "a man can not ride the grey horse"],
    ["The dogs' bowls are full!", "the dogs bowls are full"],
    ["I'm sure we've seen they're here", "i 'm sure we 've seen they 're here"],
    ["A well-lit T-shirt shop at 5:30 p.m.", "a well-lit t-shirt shop at 5:30 p.m."],
    ["It costs $5, or 3.5% of 1,000...", "it costs $ 5 or 3.5 % of 1,000"],
    ['A sign that says "STOP" -- on Main St.', "a sign that says stop on main st."],
    ["A woman’s “hat” is ‘nice’", "a woman 's hat is nice"],
    ["black/white photo of a colourful bus", "black/white photo of a colourful bus"],
    ["A line\nbreak inside", "a line break inside"],
    ["", ""],
    ["...", ""],
  ];
  for (const [caption, expected] of cases) assert.equal(ptbTokenize(caption), expected, JSON.stringify(caption));
});

test("PTB tokenizer: the quirks of CoreNLP 3.4.1 are kept", () => {
  // Brackets become -LRB-/-RRB-/-LSB-/-RSB-, lower-cased before pycocoevalcap's filter, so they stay.
  assert.equal(ptbTokenize("A bus (red) on [the] road"), "a bus -lrb- red -rrb- on -lsb- the -rsb- road");
  // Tags stay whole: the model's "<unk>" is one token, not "-lrb- unk -rrb-".
  assert.equal(ptbTokenize("a <unk> on a <unk>."), "a <unk> on a <unk>");
  // Letters joined by a period are one word.
  assert.equal(ptbTokenize("a fork.A knife"), "a fork.a knife");
  // "?!" is one token, not in the filter list.
  assert.equal(ptbTokenize("Wow?! Really"), "wow ?! really");
  // A sentence-final abbreviation keeps its period, and the period is also returned alone.
  assert.deepEqual(ptbLex("The answer is etc.\nA dog"), [["The", "answer", "is", "etc.", "."], ["A", "dog"]]);
});

test("PTB tokenizer: captions are tokenised together, because a period looks into the next one", () => {
  // A single letter's period ends the sentence when the next caption opens like a sentence.
  assert.deepEqual(ptbTokenizeCaptions(["at 12th Ave S.", "A train", "Ave S.", "a train"]), [
    "at 12th ave s",
    "a train",
    "ave s.",
    "a train",
  ]);
  assert.equal(ptbTokenize("at 12th Ave S."), "at 12th ave s.");
  // One output line per caption, whatever the caption holds.
  assert.deepEqual(ptbTokenizeCaptions(["", "a\nb", "🙂", "x"]), ["", "a b", "", "x"]);
});

test("PTB tokenizer: every caption of the official fixture gives the official tokens", { skip: tokenizerFixtureMissing }, () => {
  const { cases } = JSON.parse(fs.readFileSync(TOKENIZER_FIXTURE, "utf8")) as { cases: { caption: string; tokens: string }[] };
  assert.ok(cases.length >= 16000, `the fixture has its ${cases.length} cases`);
  // As the official tool ran: all captions in one run, in the fixture's order.
  const tokens = ptbTokenizeCaptions(cases.map((c) => c.caption));
  assert.equal(tokens.length, cases.length, "one line per caption");
  const failures = cases.filter((c, i) => tokens[i] !== c.tokens);
  const shown = failures.slice(0, 10).map((c) => `${JSON.stringify(c.caption)}\n  got      ${JSON.stringify(tokens[cases.indexOf(c)])}\n  expected ${JSON.stringify(c.tokens)}`);
  console.log(`PTB tokenizer fixture: ${cases.length - failures.length}/${cases.length} captions equal to CoreNLP 3.4.1`);
  assert.equal(failures.length, 0, `${failures.length} mismatches:\n${shown.join("\n")}`);
});

test("results files: malformed entries are named", () => {
  assert.throws(() => parseResults({ image_id: 1 }, "r.json"), /r\.json: a results file must be a JSON array/);
  assert.throws(() => parseResults([], "r.json"), /r\.json: the results list is empty/);
  assert.throws(() => parseResults([{ image_id: "7", caption: "x" }], "r.json"), /r\.json: entry 0: "image_id" must be an integer, got "7"/);
  assert.throws(() => parseResults([{ image_id: 7, caption: "x" }, { image_id: 8 }], "r.json"), /r\.json: entry 1: "caption" must be a string/);
  assert.throws(
    () => parseResults([{ image_id: 7, caption: "x" }, { image_id: 7, caption: "y" }], "r.json"),
    /r\.json: entry 1: image_id 7 already has a caption \(entry 0\)/,
  );
});

/** The COCO sample's first caption of every image, as a results file (a "perfect" captioner). */
function writeFirstReferenceResults(imageLimit = Infinity): { file: string; count: number } {
  const coco = JSON.parse(fs.readFileSync(SAMPLE, "utf8")) as { annotations: { image_id: number; caption: string }[] };
  const results = new Map<number, string>();
  for (const a of coco.annotations) if (!results.has(a.image_id) && results.size < imageLimit) results.set(a.image_id, a.caption);
  const file = path.join(tmp, `results-${results.size}.json`);
  fs.writeFileSync(file, JSON.stringify([...results].map(([image_id, caption]) => ({ image_id, caption }))));
  return { file, count: results.size };
}

/** Runs `npm run eval`'s script with tsx; returns stdout, stderr and the exit status. */
function runEval(args: string[]) {
  const run = spawnSync(process.execPath, ["--import", "tsx", "scripts/eval.ts", ...args], { cwd: ROOT, encoding: "utf8" });
  return { stdout: run.stdout, stderr: run.stderr, status: run.status };
}

test("eval CLI: a reference copied as the candidate scores high, and reproducibly", { skip: sampleMissing }, () => {
  const { file } = writeFirstReferenceResults();
  const first = runEval(["--refs", SAMPLE, "--results", file, "--json"]);
  assert.equal(first.status, 0, first.stderr);
  const scores = JSON.parse(first.stdout) as CocoScores;
  assert.deepEqual(Object.keys(scores), [...METRIC_NAMES]);
  for (const name of ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L"] as const) assert.ok(scores[name] > 0.999, `${name} = ${scores[name]}`);
  assert.ok(scores.CIDEr > 2, `CIDEr = ${scores.CIDEr}`);
  // Reproducible: the library, run again in this process, gives exactly the same numbers.
  assert.deepEqual(evaluateFiles(SAMPLE, file).scores, scores);

  const text = runEval(["--refs", SAMPLE, "--results", file]);
  assert.equal(text.status, 0, text.stderr);
  assert.deepEqual(
    text.stdout.trim().split("\n").map((line) => line.split(":")[0]),
    [...METRIC_NAMES],
  );
  assert.match(text.stdout, /^ROUGE_L: 1\.000$/m);
});

test("eval: only the images in the results are scored", { skip: sampleMissing }, () => {
  const { file, count } = writeFirstReferenceResults(10);
  const { perImage, scores } = evaluateFiles(SAMPLE, file);
  assert.equal(count, 10);
  assert.equal(perImage.size, 10);
  assert.equal(scores.ROUGE_L, 1);
});

test("eval CLI: an unknown image_id or a malformed results file is a clear error", { skip: sampleMissing }, () => {
  const unknown = path.join(tmp, "unknown.json");
  fs.writeFileSync(unknown, JSON.stringify([{ image_id: 424242, caption: "a dog" }]));
  const run = runEval(["--refs", SAMPLE, "--results", unknown]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /unknown\.json: entry 0: image_id 424242 has no reference captions in .*captions_val2014_sample\.json/);

  const missing = runEval(["--results", unknown]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--refs and --results are required/);

  const malformed = path.join(tmp, "malformed.json");
  fs.writeFileSync(malformed, "[{]");
  assert.throws(() => evaluateFiles(SAMPLE, malformed), /malformed\.json: not valid JSON/);
  assert.throws(() => evaluateFiles(path.join(tmp, "nope.json"), unknown), /nope\.json: cannot read/);
});

test("eval CLI: the raw official files give the official scores to 1e-4", { skip: rawEvalMissing }, () => {
  const run = runEval(["--refs", path.join(RAW_EVAL, "refs.json"), "--results", path.join(RAW_EVAL, "results.json"), "--json"]);
  assert.equal(run.status, 0, run.stderr);
  const scores = JSON.parse(run.stdout) as CocoScores;
  const { official } = JSON.parse(fs.readFileSync(path.join(RAW_EVAL, "expected.json"), "utf8")) as { official: CocoScores };
  for (const name of METRIC_NAMES) assertClose(scores[name], official[name], name);
});

/** Writes `value` as JSON to a file of the temporary folder and returns its path. */
function writeTmp(name: string, value: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}

test("eval: reference files as the official loader takes them (images with only an id, empty captions)", () => {
  const refs = writeTmp("bare-refs.json", {
    images: [{ id: 1 }, { id: 2 }, { id: 3 }],
    annotations: [
      { image_id: 1, caption: "A dog on a couch." },
      { image_id: 1, caption: "" },
      { image_id: 2, caption: "A cat on a mat." },
      { image_id: 9, caption: "An image the file does not list: never scored." },
    ],
  });
  const results = writeTmp("bare-results.json", [
    { image_id: 2, caption: "a cat on a mat" },
    { image_id: 1, caption: "a dog on a couch" },
  ]);
  const { scores, perImage } = evaluateFiles(refs, results);
  assert.deepEqual([...perImage.keys()], ["1", "2"], "scored in the references' order");
  assert.equal(perImage.get("2")!.ROUGE_L, 1);
  for (const name of METRIC_NAMES) assert.ok(Number.isFinite(scores[name]), `${name} = ${scores[name]}`);
  // The training loader still demands what training needs.
  assert.throws(() => parseCaptions(fs.readFileSync(refs, "utf8"), refs, tmp), /images\[0\] \(id 1\): "file_name" must be a non-empty string \(missing\)/);

  // What the official tool refuses stays refused, with the file and the entry named.
  const noCaptions = writeTmp("result-without-refs.json", [{ image_id: 3, caption: "a bird" }]);
  assert.throws(() => evaluateFiles(refs, noCaptions), /result-without-refs\.json: entry 0: image_id 3 has no reference captions in .*bare-refs\.json/);
  const unlisted = writeTmp("result-unlisted.json", [{ image_id: 9, caption: "a bird" }]);
  assert.throws(() => evaluateFiles(refs, unlisted), /result-unlisted\.json: entry 0: image_id 9 has no reference captions/);
  const twice = writeTmp("results-twice.json", [{ image_id: 1, caption: "a dog" }, { image_id: 1, caption: "a cat" }]);
  assert.throws(() => evaluateFiles(refs, twice), /results-twice\.json: entry 1: image_id 1 already has a caption \(entry 0\)/);
});

test("eval: a reference file without what the evaluation needs is a clear error", () => {
  const results = writeTmp("one-result.json", [{ image_id: 1, caption: "a dog" }]);
  const cases: [unknown, RegExp][] = [
    [{ annotations: [] }, /no-images\.json: top level: "images" must be an array \(got nothing\)/],
    [{ images: [{ file_name: "x.jpg" }], annotations: [] }, /no-images\.json: images\[0\]: "id" must be a non-negative integer \(missing\)/],
    [{ images: [{ id: 1 }] }, /no-images\.json: top level: "annotations" must be an array/],
    [{ images: [{ id: 1 }], annotations: [{ image_id: 1, caption: null }] }, /no-images\.json: annotations\[0\]: "caption" must be a string \(got null\)/],
  ];
  for (const [value, message] of cases) assert.throws(() => evaluateFiles(writeTmp("no-images.json", value), results), message);
});

test("validation scores (training, notebook 3): the model's <unk> is one token, as officially", () => {
  const refs = { images: [{ id: 1, file_name: "1.jpg", width: 8, height: 8 }], annotations: [{ id: 1, image_id: 1, caption: "A dog on a couch." }] };
  const index = parseCaptions(JSON.stringify(refs), "val.json", "images");
  const caption = { caption: "a <unk> on a couch", tokens: [], logProb: 0 };
  const { scores } = scoreCaptions({ split: "val", index }, new Map([[1, caption]]));
  // 5 candidate tokens, 4 of them in the reference of 5: BLEU-1 is 4/5 (as -lrb- unk -rrb- it would be 4/7).
  assertClose(scores!.Bleu_1, 0.8, "Bleu_1", 1e-9);
});
