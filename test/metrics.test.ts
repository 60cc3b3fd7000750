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
import { bleu, bleuStats, closestRefLength } from "../lib/metrics/bleu";
import { ciderD } from "../lib/metrics/cider";
import { METRIC_NAMES, type CocoScores, evaluateFiles, parseResults, scoreTokenized } from "../lib/metrics/evaluate";
import { ptbLex, ptbTokenize } from "../lib/metrics/ptb-tokenize";
import { lcsLength, rouge, rougeL } from "../lib/metrics/rouge";

const ROOT = path.resolve(__dirname, "..");
const SHARED = path.resolve(__dirname, "../../shared");
const FIXTURE = path.join(SHARED, "fixtures/coco-eval-fixture.json");
const SAMPLE = path.join(SHARED, "coco-sample/annotations/captions_val2014_sample.json");
const fixtureMissing = fs.existsSync(FIXTURE) ? false : "../shared/fixtures/coco-eval-fixture.json not found";
const sampleMissing = fs.existsSync(SAMPLE) ? false : "../shared/coco-sample not found";

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
    ["A man cannot ride the grey horse.", "a man can not ride the gray horse"],
    ["The dogs' bowls are full!", "the dogs bowls are full"],
    ["I'm sure we've seen they're here", "i 'm sure we 've seen they 're here"],
    ["A well-lit T-shirt shop at 5:30 p.m.", "a well-lit t-shirt shop at 5:30 p.m."],
    ["It costs $5, or 3.5% of 1,000...", "it costs $ 5 or 3.5 % of 1,000"],
    ['A sign that says "STOP" -- on Main St.', "a sign that says stop on main st."],
    ["A woman’s “hat” is ‘nice’", "a woman 's hat is nice"],
    ["black/white photo of a colourful bus", "black\\/white photo of a colorful bus"],
    ["A line\nbreak inside", "a line break inside"],
    ["", ""],
    ["...", ""],
  ];
  for (const [caption, expected] of cases) assert.equal(ptbTokenize(caption), expected, JSON.stringify(caption));
});

test("PTB tokenizer: the Java tool's quirks are kept", () => {
  // Brackets become -LRB-/-RRB-, lower-cased before pycocoevalcap's filter, so they stay.
  assert.equal(ptbTokenize("A bus (red) on the road"), "a bus -lrb- red -rrb- on the road");
  assert.deepEqual(ptbLex("A (bus)"), ["A", "-LRB-", "bus", "-RRB-"]);
  // "/" and "*" are escaped with a backslash, as in the PTB3 WSJ.
  assert.deepEqual(ptbLex("a / b * c"), ["a", "\\/", "b", "\\*", "c"]);
  // "?!" is one token, not in the filter list.
  assert.equal(ptbTokenize("Wow?! Really"), "wow ?! really");
  // A sentence-final abbreviation keeps its period (and the period is also returned alone).
  assert.deepEqual(ptbLex("The answer is no."), ["The", "answer", "is", "no.", "."]);
  // Americanize is case-sensitive: a capitalised "Grey" stays.
  assert.equal(ptbTokenize("Grey cat, grey dog"), "grey cat gray dog");
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
