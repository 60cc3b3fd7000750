/**
 * The tokenizer against the real NLTK: every case of the fixture must give exactly the
 * tokens that NLTK 3.8's word_tokenize gave (test/fixtures/tokenizer/make_fixture.py).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { tokenizeForVocabulary, wordTokenize } from "../lib/data/tokenizer";

/** [text, tokens of text.lower(), tokens of text (hand and generated cases only)] */
type Case = [text: string, lowerTokens: string[], casedTokens?: string[]];

interface Fixture {
  nltk: string;
  coco: Case[];
  hand: Case[];
  generated: Case[];
}

const fixture: Fixture = JSON.parse(
  fs.readFileSync(path.join(__dirname, "fixtures/tokenizer/nltk-word-tokenize.json"), "utf8"),
);

/** Checks every case and reports the mismatches all at once (at most 10 shown). */
function checkGroup(name: keyof Omit<Fixture, "nltk">, minCases: number): void {
  const cases = fixture[name];
  assert.ok(cases.length >= minCases, `${name}: ${cases.length} cases, expected at least ${minCases}`);
  const failures: string[] = [];
  let checked = 0;
  for (const [text, lowerTokens, casedTokens] of cases) {
    const got = tokenizeForVocabulary(text);
    checked++;
    if (JSON.stringify(got) !== JSON.stringify(lowerTokens)) {
      failures.push(`tokenizeForVocabulary(${JSON.stringify(text)})\n  got      ${JSON.stringify(got)}\n  expected ${JSON.stringify(lowerTokens)}`);
    }
    if (casedTokens === undefined) continue;
    const gotCased = wordTokenize(text);
    checked++;
    if (JSON.stringify(gotCased) !== JSON.stringify(casedTokens)) {
      failures.push(`wordTokenize(${JSON.stringify(text)})\n  got      ${JSON.stringify(gotCased)}\n  expected ${JSON.stringify(casedTokens)}`);
    }
  }
  console.log(`tokenizer fixture "${name}": ${checked - failures.length}/${checked} equal to NLTK ${fixture.nltk}`);
  assert.equal(failures.length, 0, `${failures.length} mismatches:\n${failures.slice(0, 10).join("\n")}`);
}

test("matches NLTK on at least 2,000 real COCO captions", () => checkGroup("coco", 2000));

test("matches NLTK on the hand-written hard cases, lower-cased and cased", () => checkGroup("hand", 50));

test("matches NLTK on generated strings of quotes, clitics, digits and odd whitespace", () =>
  checkGroup("generated", 100));

test("lower-cases before tokenizing, as the original did", () => {
  assert.deepEqual(tokenizeForVocabulary("A Dog DOESN'T Bark."), ["a", "dog", "does", "n't", "bark", "."]);
  assert.deepEqual(wordTokenize("A Dog DOESN'T Bark."), ["A", "Dog", "DOES", "N'T", "Bark", "."]);
});

test("keeps hyphenated words and numbers whole, splits clitics and final periods", () => {
  assert.deepEqual(tokenizeForVocabulary("A well-known 3.5 km road, 1,000 cars. It's 10:30 and they can't stop."), [
    "a", "well-known", "3.5", "km", "road", ",", "1,000", "cars.", "it", "'s", "10:30",
    "and", "they", "ca", "n't", "stop", ".",
  ]);
});
