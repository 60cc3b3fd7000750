/**
 * The vocabulary: the words the model can read and write, each with an integer id.
 *
 * As in the original, it holds every word that appears at least `threshold` times in the
 * training captions (rarer words become "<unk>"), after three special words:
 *
 *     id 0 "<start>"  fed to the decoder before the first word
 *     id 1 "<end>"    the last token of every caption (and the padding id, always with a mask)
 *     id 2 "<unk>"    any word the vocabulary does not hold
 *
 * The word order is deterministic (most frequent first, ties alphabetical), so the same
 * captions always give the same ids. A vocabulary is saved as versioned JSON, and its
 * fingerprint lets a checkpoint refuse a vocabulary whose ids differ from its own.
 */
import { createHash, randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { tokenizeForVocabulary } from "./tokenizer";

export const START = 0;
export const END = 1;
export const UNK = 2;
export const START_WORD = "<start>";
export const END_WORD = "<end>";
export const UNK_WORD = "<unk>";
/** The special words, at their ids. */
export const SPECIAL_WORDS: readonly string[] = [START_WORD, END_WORD, UNK_WORD];

/** Tokens that `tokenize` splits off the word before them, and `clean` joins back to it. */
const ATTACHED_TOKENS = /^(?:[.,;:!?)\]}%]+|'s|'re|'ve|'ll|'d|'m|n't)$/;
/** Tokens that the next token is joined to: opening brackets. */
const OPENING_TOKENS = /^[([{]$/;

export const VOCABULARY_FORMAT = "captioner-vocabulary";
export const VOCABULARY_VERSION = 1;

/** The saved form of a vocabulary (version 1). */
export interface VocabularyJSON {
  format: typeof VOCABULARY_FORMAT;
  version: typeof VOCABULARY_VERSION;
  /** The minimum count a word needed to be kept. */
  threshold: number;
  /** The word of every id: words[id]. The special words come first. */
  words: string[];
  /** How often each word appeared in the captions it was built from (0 for the special words). */
  counts?: number[];
}

/** How often each token appears in the captions (tokenized as the vocabulary does). */
export function countWords(captions: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const caption of captions) {
    for (const word of tokenizeForVocabulary(caption)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

export class Vocabulary {
  /** word -> id */
  private readonly ids: Map<string, number>;

  private constructor(
    /** The word of every id. */
    readonly words: readonly string[],
    readonly threshold: number,
    readonly counts?: readonly number[],
  ) {
    this.ids = new Map(words.map((word, id) => [word, id]));
  }

  /**
   * The vocabulary of these captions: the special words, then every word seen at least
   * `threshold` times, most frequent first (ties in alphabetical order).
   */
  static build(captions: Iterable<string>, { threshold }: { threshold: number }): Vocabulary {
    if (!Number.isInteger(threshold) || threshold < 1) {
      throw new Error(`vocabulary threshold must be an integer >= 1 (got ${threshold})`);
    }
    const kept = [...countWords(captions)]
      .filter(([, count]) => count >= threshold)
      .sort(([a, countA], [b, countB]) => countB - countA || (a < b ? -1 : a > b ? 1 : 0));
    const words = [...SPECIAL_WORDS, ...kept.map(([word]) => word)];
    const counts = [...SPECIAL_WORDS.map(() => 0), ...kept.map(([, count]) => count)];
    return new Vocabulary(words, threshold, counts);
  }

  /** Number of ids, special words included. */
  get size(): number {
    return this.words.length;
  }

  /** The id of a word; UNK for a word the vocabulary does not hold. */
  idOf(word: string): number {
    return this.ids.get(word) ?? UNK;
  }

  /** The word of an id; throws on an id outside the vocabulary. */
  wordOf(id: number): string {
    const word = this.words[id];
    if (word === undefined) throw new RangeError(`id ${id} is not in the vocabulary (ids 0..${this.size - 1})`);
    return word;
  }

  /** A caption as the model sees it: [START, w1, ..., wn, END], unknown words as UNK. */
  encode(caption: string): number[] {
    return [START, ...tokenizeForVocabulary(caption).map((word) => this.idOf(word)), END];
  }

  /** The word of every id, special words included. */
  decode(ids: Iterable<number>): string[] {
    return Array.from(ids, (id) => this.wordOf(id));
  }

  /**
   * A readable sentence from the model's output: drop START, stop at END, and join the tokens as
   * text is written: with spaces, except before punctuation and split-off clitics and after an
   * opening bracket ("a circle , a square" → "a circle, a square"; "is n't" → "isn't").
   */
  clean(ids: Iterable<number>): string {
    let sentence = "";
    let glued = true; // no space before the next token: at the start, and after an opening bracket
    for (const id of ids) {
      if (id === END) break;
      if (id === START) continue;
      const word = this.wordOf(id);
      sentence += glued || ATTACHED_TOKENS.test(word) ? word : ` ${word}`;
      glued = OPENING_TOKENS.test(word);
    }
    return sentence;
  }

  /** sha256 of the word list: equal fingerprints mean every id means the same word. */
  fingerprint(): string {
    return createHash("sha256").update(JSON.stringify(this.words)).digest("hex");
  }

  toJSON(): VocabularyJSON {
    const json: VocabularyJSON = {
      format: VOCABULARY_FORMAT,
      version: VOCABULARY_VERSION,
      threshold: this.threshold,
      words: [...this.words],
    };
    if (this.counts !== undefined) json.counts = [...this.counts];
    return json;
  }

  /** A vocabulary from its JSON form; `sourceName` (a file name, say) names it in errors. */
  static fromJSON(json: unknown, sourceName: string): Vocabulary {
    const fail = (message: string): never => {
      throw new Error(`${sourceName}: ${message}`);
    };
    if (typeof json !== "object" || json === null || Array.isArray(json)) fail("a vocabulary must be a JSON object");
    const { format, version, threshold, words, counts } = json as Partial<Record<keyof VocabularyJSON, unknown>>;
    if (format !== VOCABULARY_FORMAT) {
      fail(`not a vocabulary file (format ${JSON.stringify(format)}, expected "${VOCABULARY_FORMAT}")`);
    }
    if (version !== VOCABULARY_VERSION) {
      fail(`vocabulary version ${JSON.stringify(version)} is not supported (this code reads version ${VOCABULARY_VERSION})`);
    }
    if (!Number.isInteger(threshold) || (threshold as number) < 1) fail(`"threshold" must be an integer >= 1`);
    if (!Array.isArray(words) || !words.every((w) => typeof w === "string" && w !== "")) {
      fail(`"words" must be an array of non-empty strings`);
    }
    const wordList = words as string[];
    if (SPECIAL_WORDS.some((special, id) => wordList[id] !== special)) {
      fail(`"words" must start with ${SPECIAL_WORDS.map((w) => JSON.stringify(w)).join(", ")}`);
    }
    if (new Set(wordList).size !== wordList.length) fail(`"words" has duplicates`);
    if (counts !== undefined) {
      const valid = Array.isArray(counts) && counts.length === wordList.length && counts.every((c) => Number.isInteger(c) && c >= 0);
      if (!valid) fail(`"counts" must be an array of non-negative integers, one per word`);
    }
    return new Vocabulary(wordList, threshold as number, counts as number[] | undefined);
  }

  /** Writes the vocabulary as JSON, atomically: a reader sees the old file or the new one, never half of one. */
  async save(file: string): Promise<void> {
    const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}.tmp`);
    try {
      await fs.writeFile(temp, JSON.stringify(this.toJSON(), null, 1) + "\n"); // one word per line
      await fs.rename(temp, file);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw new Error(`${file}: cannot save the vocabulary: ${(err as Error).message}`);
    }
  }

  /** Reads a vocabulary saved by `save`. */
  static async load(file: string): Promise<Vocabulary> {
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message;
      throw new Error(`${file}: cannot read the vocabulary: ${reason}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file}: invalid JSON: ${(err as Error).message}`);
    }
    return Vocabulary.fromJSON(json, file);
  }
}

/**
 * Throws unless `vocab` is the vocabulary whose fingerprint was recorded (by a checkpoint,
 * say): a model's ids only mean something with the vocabulary it was trained with.
 * `where` names what recorded it, for the error message.
 */
export function assertSameVocabulary(expectedFingerprint: string, vocab: Vocabulary, where: string): void {
  const actual = vocab.fingerprint();
  if (actual !== expectedFingerprint) {
    throw new Error(
      `${where}: the vocabulary does not match (its fingerprint is ${actual.slice(0, 12)}..., ` +
        `${vocab.size} words; expected ${expectedFingerprint.slice(0, 12)}...)`,
    );
  }
}
