/**
 * The vocabulary's tokenizer: lower-case, then split into words exactly as NLTK does.
 * (Not the evaluation's: BLEU, ROUGE-L and CIDEr-D tokenise with the official COCO
 * evaluation tokenizer, CoreNLP's, in lib/evaluation/metrics/ptb-tokenize.ts. The two differ: here
 * "a <unk> on a bench." is a, <, unk, >, on, a, bench, "."; there "a <unk> on a bench".
 * Each must match its own reference.)
 *
 * The original project built its vocabulary with
 * `nltk.tokenize.word_tokenize(str(caption).lower())`. To give the same words (and so
 * the same vocabulary), this file ports NLTK 3.8's `NLTKWordTokenizer` (an improved
 * Penn Treebank tokenizer, nltk/tokenize/destructive.py) rule by rule: a sequence of
 * regular-expression substitutions that pad punctuation with spaces, then a split on
 * whitespace. `word_tokenize` also runs the Punkt sentence splitter first; on one-line
 * captions that only matters for a period inside the text, and we match
 * `word_tokenize(text, preserve_line=True)`, which skips it.
 *
 * Python's `re` and JavaScript's RegExp differ in small ways, so a few pieces of the
 * patterns are spelled out below (see the constants) rather than copied verbatim.
 * test/fixtures/tokenizer/ holds thousands of captions tokenized by the real NLTK.
 */

// ---- Python `re` semantics, written for JavaScript (all patterns use the `u` flag) ----

/** Python's `\w` on str patterns is Unicode-aware; JavaScript's `\w` is ASCII only. */
const W = String.raw`[\p{L}\p{N}_]`;
/**
 * Python's `\b` is Unicode-aware too. In NLTK's patterns it always sits next to a word
 * character, where it means "no word character before" (or "after"):
 * `\b(can)` = `${WORD_START}(can)`, `(not)\b` = `(not)${WORD_END}`.
 */
const WORD_START = `(?<!${W})`;
const WORD_END = `(?!${W})`;
/** Python's `\d`: any Unicode decimal digit. */
const D = String.raw`\p{Nd}`;
/** Python's `\s` (and `str.split()`): includes \x1c-\x1f and \x85 but, unlike JavaScript's, not U+FEFF. */
const S = String.raw`[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`;
/**
 * Under `(?i)` Python's `i` also matches "ı" (dotless i) and "İ" (whose simple lower case
 * is "i"); JavaScript's case folding does not, so the contractions that contain an "i"
 * spell these out.
 */
const I = "[iİı]";

/** One substitution: every match of `pattern` is replaced by `replacement` (`$1`, `$&` as in String.replace). */
type Rule = [pattern: RegExp, replacement: string];

/**
 * Substitutions applied in order, and a quick test of whether they can change the text at
 * all: every rule needs one of the trigger's characters (or letters), so most captions
 * skip most groups. The trigger only saves time (docs/performance.md#tokenizing-captions); the
 * tokens are the same.
 */
interface RuleGroup {
  trigger: RegExp;
  rules: Rule[];
}

/** Compiles a pattern with Python-like Unicode semantics; `ignoreCase` stands for NLTK's `(?i)`. */
function rx(source: string, ignoreCase = false): RegExp {
  return new RegExp(source, ignoreCase ? "giu" : "gu");
}

/** Opening quotes become separate tokens; a double quote at the start or after a space/bracket becomes ``. */
const STARTING_QUOTES: RuleGroup = {
  trigger: /[«“‘„`"']/u,
  rules: [
    [rx("([«“‘„]|`+)"), " $1 "],
    [rx('^"'), "``"],
    [rx("(``)"), " $1 "],
    [rx(`([ ([{<])("|'{2})`), "$1 `` "],
    // A single quote before a word that is not a clitic ('re, 've, 'll, 'm, 't, 's, 'd, 'n).
    [rx(`(')(?!re|ve|ll|m|t|s|d|n)(${W})${WORD_END}`, true), "$1 $2"],
  ],
};

/** Punctuation is padded with spaces, except inside numbers (3.5, 1,000) and abbreviations. */
const PUNCTUATION: RuleGroup = {
  trigger: /[.:,;@#$%&?!'*]/u,
  rules: [
    // A final period, with any closing brackets/quotes after it.
    [rx(`([^.])(\\.)([\\])}>"'»”’ ]*)${S}*$`), "$1 $2 $3 "],
    // Commas and colons, but not between digits.
    [rx(`([:,])([^${D}])`), " $1 $2"],
    // (Python's `$` also matches before a final newline, but ",\n" was padded by the rule above.)
    [rx("([:,])$"), " $1 "],
    // An ellipsis (two or more periods) is one token.
    [rx("\\.{2,}"), " $& "],
    [rx("[;@#$%&]"), " $& "],
    // The final period again (NLTK keeps both rules; the first one usually wins).
    [rx(`([^.])(\\.)([\\])}>"']*)${S}*$`), "$1 $2$3 "],
    [rx("[?!]"), " $& "],
    [rx("([^'])' "), "$1 ' "],
    [rx("[*]"), " $& "],
  ],
};

/** Brackets of every kind are tokens; a double dash is one token (a single hyphen stays inside the word). */
const BRACKETS_AND_DASHES: RuleGroup = {
  trigger: /[\][(){}<>-]/u,
  rules: [
    [rx("[\\][(){}<>]"), " $& "],
    [rx("--"), " -- "],
  ],
};

/** Closing quotes, then clitics split off their word: "it's" → "it 's", "don't" → "do n't". */
const ENDING_QUOTES: RuleGroup = {
  trigger: /['"»”’]/u,
  rules: [
    [rx("([»”’])"), " $1 "],
    [rx("''"), " '' "],
    [rx('"'), " '' "],
    [rx("([^' ])('[sS]|'[mM]|'[dD]|') "), "$1 $2 "],
    [rx("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), "$1 $2 "],
  ],
};

/** Robert MacIntyre's contractions: "cannot" → "can not", "gonna" → "gon na", "'tis" → "'t is". */
const CONTRACTIONS: RuleGroup = {
  trigger: /can|'|g[iİı]m|gon|got|lem|wan/iu,
  rules: [
    [rx(`${WORD_START}(can)(not)${WORD_END}`, true), " $1 $2 "],
    [rx(`${WORD_START}(d)('ye)${WORD_END}`, true), " $1 $2 "],
    [rx(`${WORD_START}(g${I}m)(me)${WORD_END}`, true), " $1 $2 "],
    [rx(`${WORD_START}(gon)(na)${WORD_END}`, true), " $1 $2 "],
    [rx(`${WORD_START}(got)(ta)${WORD_END}`, true), " $1 $2 "],
    [rx(`${WORD_START}(lem)(me)${WORD_END}`, true), " $1 $2 "],
    [rx(`${WORD_START}(more)('n)${WORD_END}`, true), " $1 $2 "],
    [rx(`${WORD_START}(wan)(na)(?=${S})`, true), " $1 $2 "],
    [rx(` ('t)(${I}s)${WORD_END}`, true), " $1 $2 "],
    [rx(` ('t)(was)${WORD_END}`, true), " $1 $2 "],
  ],
};

const WHITESPACE = new RegExp(`${S}+`, "u");

function applyRules(text: string, { trigger, rules }: RuleGroup): string {
  if (!trigger.test(text)) return text;
  for (const [pattern, replacement] of rules) text = text.replace(pattern, replacement);
  return text;
}

/**
 * NLTK's `word_tokenize(text, preserve_line=True)`: the Treebank-style word tokens of
 * `text`, case preserved.
 *
 *     wordTokenize(`He said "don't", 3.5 times...`)
 *     // ["He", "said", "``", "do", "n't", "''", ",", "3.5", "times", "..."]
 */
export function wordTokenize(text: string): string[] {
  text = applyRules(text, STARTING_QUOTES);
  text = applyRules(text, PUNCTUATION);
  text = applyRules(text, BRACKETS_AND_DASHES);
  text = applyRules(` ${text} `, ENDING_QUOTES); // the padding lets the clitic rules see a space at both ends
  text = applyRules(text, CONTRACTIONS);
  return text.split(WHITESPACE).filter((token) => token !== "");
}

/**
 * The tokens of a caption as the vocabulary sees them: lower-cased, then NLTK word
 * tokens (the original's `word_tokenize(str(caption).lower())`).
 *
 *     tokenizeForVocabulary("A man riding a horse.") // ["a", "man", "riding", "a", "horse", "."]
 */
export function tokenizeForVocabulary(caption: string): string[] {
  return wordTokenize(caption.toLowerCase());
}
