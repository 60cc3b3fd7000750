/**
 * Vocabulary: threshold, special ids, encode/decode/clean, versioned JSON, save/load and
 * the fingerprint check that checkpoints rely on.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  END,
  START,
  UNK,
  Vocabulary,
  assertSameVocabulary,
  countWords,
  type VocabularyJSON,
} from "../lib/data/vocabulary";
import { tokenizeForVocabulary } from "../lib/data/tokenizer";

const CAPTIONS = ["A dog runs.", "A dog sits.", "A cat sits.", "The dog, a cat."];
// Counts: a 4, . 4, dog 3, cat 2, sits 2, "," 1, runs 1, the 1.

const REAL_CAPTIONS = path.resolve(__dirname, "../../shared/coco-sample/annotations/captions_val2017_text_only.json");
const realMissing = fs.existsSync(REAL_CAPTIONS) ? false : "../shared/coco-sample not found";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vocab-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

function writeJSON(name: string, json: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

test("special ids are <start>=0, <end>=1, <unk>=2", () => {
  assert.deepEqual([START, END, UNK], [0, 1, 2]);
  const vocab = Vocabulary.build(CAPTIONS, { threshold: 1 });
  assert.deepEqual(vocab.decode([START, END, UNK]), ["<start>", "<end>", "<unk>"]);
  assert.equal(vocab.idOf("<end>"), END);
});

test("counts lower-cased NLTK tokens", () => {
  const counts = countWords(CAPTIONS);
  assert.equal(counts.get("a"), 4);
  assert.equal(counts.get("."), 4);
  assert.equal(counts.get("dog"), 3);
  assert.equal(counts.get("A"), undefined);
});

test("the threshold keeps words seen at least that often, most frequent first, ties alphabetical", () => {
  const byThreshold = (threshold: number) => Vocabulary.build(CAPTIONS, { threshold }).words.slice(3);
  assert.deepEqual(byThreshold(1), [".", "a", "dog", "cat", "sits", ",", "runs", "the"]);
  assert.deepEqual(byThreshold(2), [".", "a", "dog", "cat", "sits"]);
  assert.deepEqual(byThreshold(4), [".", "a"]);
  assert.deepEqual(byThreshold(5), []);
  assert.deepEqual(Vocabulary.build(CAPTIONS, { threshold: 2 }).counts, [0, 0, 0, 4, 4, 3, 2, 2]);
});

test("the word order does not depend on the order of the captions", () => {
  const a = Vocabulary.build(CAPTIONS, { threshold: 1 });
  const b = Vocabulary.build([...CAPTIONS].reverse(), { threshold: 1 });
  assert.deepEqual(a.words, b.words);
  assert.equal(a.fingerprint(), b.fingerprint());
});

test("a threshold below 1 or fractional is an error", () => {
  assert.throws(() => Vocabulary.build(CAPTIONS, { threshold: 0 }), /threshold must be an integer >= 1 \(got 0\)/);
  assert.throws(() => Vocabulary.build(CAPTIONS, { threshold: 2.5 }), /got 2\.5/);
});

test("encode wraps the tokens in START/END and maps unknown words to UNK", () => {
  const vocab = Vocabulary.build(CAPTIONS, { threshold: 2 });
  const id = (word: string) => vocab.words.indexOf(word);
  assert.deepEqual(vocab.encode("A DOG flies."), [START, id("a"), id("dog"), UNK, id("."), END]);
  assert.deepEqual(vocab.encode(""), [START, END]);
  assert.equal(vocab.idOf("zebra"), UNK);
});

test("decode gives every word, clean drops START and stops at END", () => {
  const vocab = Vocabulary.build(CAPTIONS, { threshold: 1 });
  const ids = vocab.encode("The cat sits.");
  assert.deepEqual(vocab.decode(ids), ["<start>", "the", "cat", "sits", ".", "<end>"]);
  assert.equal(vocab.clean(ids), "the cat sits.");
  assert.equal(vocab.clean([...ids, ...vocab.encode("a dog")]), "the cat sits.", "stops at the first END");
  assert.equal(vocab.clean(ids.slice(0, 3)), "the cat", "no END: keeps everything");
  assert.equal(vocab.clean(new Int32Array([START, START, vocab.idOf("dog"), UNK, END])), "dog <unk>");
  assert.throws(() => vocab.decode([0, vocab.size]), RangeError);
});

test("clean writes punctuation and clitics against the word before, as text is written", () => {
  const sentence = "A red circle, a dog's ball and a cat that isn't (here): yes!";
  const vocab = Vocabulary.build([sentence], { threshold: 1 });
  assert.equal(vocab.clean(vocab.encode(sentence)), "a red circle, a dog's ball and a cat that isn't (here): yes!");
  // Every caption of the synthetic set comes back as written (they are lower case, with ", " lists).
  const listed = "a green background with a large yellow triangle, a purple circle and a white triangle";
  const listVocab = Vocabulary.build([listed], { threshold: 1 });
  assert.equal(listVocab.clean(listVocab.encode(listed)), listed);
  assert.throws(() => vocab.clean([-1]), /id -1 is not in the vocabulary/);
});

test("toJSON/fromJSON keep the words, the counts and the fingerprint", () => {
  const vocab = Vocabulary.build(CAPTIONS, { threshold: 2 });
  const json = JSON.parse(JSON.stringify(vocab)) as VocabularyJSON;
  assert.equal(json.format, "captioner-vocabulary");
  assert.equal(json.version, 1);
  assert.equal(json.threshold, 2);
  assert.deepEqual(json.words.slice(0, 3), ["<start>", "<end>", "<unk>"]);
  const copy = Vocabulary.fromJSON(json, "memory");
  assert.deepEqual(copy.words, vocab.words);
  assert.deepEqual(copy.counts, vocab.counts);
  assert.equal(copy.threshold, 2);
  assert.equal(copy.size, vocab.size);
  assert.equal(copy.fingerprint(), vocab.fingerprint());
  const { counts, ...withoutCounts } = json;
  assert.equal(Vocabulary.fromJSON(withoutCounts, "memory").counts, undefined);
  assert.equal(counts?.length, json.words.length);
});

test("save writes atomically and load reads it back", async () => {
  const vocab = Vocabulary.build(CAPTIONS, { threshold: 1 });
  const file = path.join(tmp, "vocab.json");
  fs.writeFileSync(file, "old contents");
  await vocab.save(file);
  assert.deepEqual(fs.readdirSync(tmp).filter((name) => name.includes("vocab.json")), ["vocab.json"], "no temp file left");
  const loaded = await Vocabulary.load(file);
  assert.deepEqual(loaded.words, vocab.words);
  assert.deepEqual(loaded.encode("the dog runs"), vocab.encode("the dog runs"));
  await assert.rejects(vocab.save(path.join(tmp, "no-such-dir", "vocab.json")), /no-such-dir.vocab\.json: cannot save the vocabulary/);
});

test("load names the file and what is wrong with it", async () => {
  const good = Vocabulary.build(CAPTIONS, { threshold: 1 }).toJSON();
  const cases: [string, unknown, string][] = [
    ["wrong-format.json", { ...good, format: "pickle" }, 'not a vocabulary file (format "pickle", expected "captioner-vocabulary")'],
    ["no-format.json", { words: good.words }, "not a vocabulary file (format undefined"],
    ["wrong-version.json", { ...good, version: 2 }, "vocabulary version 2 is not supported (this code reads version 1)"],
    ["array.json", [], "a vocabulary must be a JSON object"],
    ["no-specials.json", { ...good, words: good.words.slice(3) }, '"words" must start with "<start>", "<end>", "<unk>"'],
    ["duplicates.json", { ...good, words: [...good.words, "dog"], counts: undefined }, '"words" has duplicates'],
    ["bad-word.json", { ...good, words: [...good.words, 7] }, '"words" must be an array of non-empty strings'],
    ["bad-counts.json", { ...good, counts: [1, 2] }, '"counts" must be an array of non-negative integers, one per word'],
    ["bad-threshold.json", { ...good, threshold: 0 }, '"threshold" must be an integer >= 1'],
  ];
  for (const [name, json, message] of cases) {
    const file = writeJSON(name, json);
    await assert.rejects(Vocabulary.load(file), (err: Error) => {
      assert.ok(err.message.startsWith(`${file}: ${message}`), `${name}: ${err.message}`);
      return true;
    });
  }
  const notJson = path.join(tmp, "not-json.json");
  fs.writeFileSync(notJson, "{ words: ");
  await assert.rejects(Vocabulary.load(notJson), { message: new RegExp(`^${notJson}: invalid JSON: `) });
  const missing = path.join(tmp, "missing.json");
  await assert.rejects(Vocabulary.load(missing), { message: `${missing}: cannot read the vocabulary: no such file` });
});

test("assertSameVocabulary accepts the same words and refuses different ids", () => {
  const vocab = Vocabulary.build(CAPTIONS, { threshold: 1 });
  const recorded = vocab.fingerprint();
  assert.match(recorded, /^[0-9a-f]{64}$/);
  assertSameVocabulary(recorded, Vocabulary.fromJSON(vocab.toJSON(), "copy"), "checkpoint");
  const other = Vocabulary.build(CAPTIONS, { threshold: 2 });
  assert.throws(() => assertSameVocabulary(recorded, other, "runs/abc/checkpoint"), {
    message: `runs/abc/checkpoint: the vocabulary does not match (its fingerprint is ${other.fingerprint().slice(0, 12)}..., 8 words; expected ${recorded.slice(0, 12)}...)`,
  });
  // Same words in another order is another vocabulary: the ids differ.
  const json = vocab.toJSON();
  const swapped = { ...json, words: [...json.words.slice(0, 3), json.words[4], json.words[3], ...json.words.slice(5)] };
  assert.throws(() => assertSameVocabulary(recorded, Vocabulary.fromJSON(swapped, "swapped"), "ckpt"), /does not match/);
});

test("on 24,500 real COCO captions: threshold shrinks the vocabulary, every caption encodes", { skip: realMissing }, () => {
  const captions: string[] = JSON.parse(fs.readFileSync(REAL_CAPTIONS, "utf8")).annotations.map((a: { caption: string }) => a.caption);
  const all = Vocabulary.build(captions, { threshold: 1 });
  const five = Vocabulary.build(captions, { threshold: 5 });
  assert.ok(five.size < all.size / 2, `threshold 5: ${five.size} words, threshold 1: ${all.size}`);
  assert.deepEqual(five.words.slice(3, 5), ["a", "."], "the most frequent tokens");
  let unknown = 0;
  for (const caption of captions) {
    const ids = five.encode(caption);
    assert.equal(ids[0], START);
    assert.equal(ids[ids.length - 1], END);
    unknown += ids.filter((id) => id === UNK).length;
    assert.deepEqual(all.decode(all.encode(caption)).slice(1, -1), tokenizeForVocabulary(caption), "no unknown word at threshold 1");
  }
  assert.ok(unknown > 0, "rare words become <unk> at threshold 5");
});

