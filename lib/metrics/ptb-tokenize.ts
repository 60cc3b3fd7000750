/**
 * The caption tokenizer of the COCO evaluation, in JavaScript.
 *
 * pycocoevalcap (tokenizer/ptbtokenizer.py) writes all captions, one per line, to a file
 * and runs Stanford CoreNLP 3.4.1's PTBTokenizer on it (`-preserveLines -lowerCase`),
 * then drops the tokens in PUNCTUATION and joins the rest with single spaces. Metrics are
 * only comparable with published numbers if captions are tokenised the same way, so this
 * module emulates that lexer (PTBLexer.flex) for the text that captions contain:
 *
 *   "A dog's toy, isn't it?"  →  "a dog 's toy is n't it"
 *
 * How it works: like the JFlex lexer it ports, it scans left to right; at each position
 * every rule is tried and the longest match wins (a rule's trailing context counts toward
 * its length), ties going to the earlier rule. Each rule says what token(s) it emits.
 * Tokens are then lower-cased (after the rules, as the Java tool does) and filtered.
 *
 * Where it follows the Java tool, including its quirks:
 * - clitics split off: "dog's" → "dog 's", "don't" → "do n't", "can't" → "ca n't",
 *   "cannot" → "can not", "they're" → "they 're"; "o'clock", "y'all"-style words kept whole;
 * - hyphenated words and "and/or" stay one token (the slash escaped: "and\/or");
 * - numbers keep their separators ("1,000", "3.5", "5:30"); "$5" → "$ 5"; "5%" → "5 %";
 * - known abbreviations keep their period ("st.", "mr.", "u.s.", "a.m.", "etc.", and any
 *   single letter + "."), so a sentence-final "no." survives as a token;
 * - British spellings are Americanized ("grey" → "gray", "colour" → "color"; americanize.ts);
 * - brackets become -LRB- / -RRB- / -LCB- / -RCB-, and since the tool lower-cases *before*
 *   pycocoevalcap filters punctuation, they arrive as "-lrb-" etc. and are NOT dropped;
 * - "?!" and "!!" are single tokens not in the filter list, so they survive; so do "&", "%",
 *   "$", "#", "+", "=", "@", "*" (escaped "\*") and "/" (escaped "\/").
 *
 * Where it can differ from the Java tool (rare in captions):
 * - newline-like characters other than "\n" (\r, U+2028, U+0085 ...) are plain spaces
 *   here; in the original they start a new output line and misalign every later caption;
 * - not emulated: SGML tags, HTML entities other than &amp; &apos; &quot; &lt; &gt;,
 *   phone numbers, the rule that ends a sentence after an acronym followed by a
 *   capitalised pronoun, the untokenizable-character warning; Unicode classes are
 *   approximated with \p{L} / \p{Nd}, and the symbol class is a subset of the original's;
 * - the lexer rules were ported from the CoreNLP 3.x source, not checked token by token
 *   against the 3.4.1 jar (which cannot be fetched here).
 */
import { americanize } from "./americanize";

/**
 * The tokens pycocoevalcap removes after tokenisation. It compares them with tokens the
 * Java tool has already lower-cased, so the four bracket tokens never match (see above).
 */
export const PUNCTUATION: ReadonlySet<string> = new Set([
  "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
  ".", "?", "!", ",", ":", "-", "--", "...", ";",
]);

/** One lexer rule: a pattern, an optional trailing context, and the tokens it emits. */
interface Rule {
  /** Sticky pattern matched at the current position. */
  match: RegExp;
  /** Sticky pattern that must follow the match; consumed later, but counted in the match length. */
  context?: RegExp;
  /** Tokens for the matched text ([] drops it). */
  emit: (text: string) => string[];
  /** Characters actually consumed (default: the whole match); the rest is scanned again. */
  consume?: (text: string) => number;
}

/** A caseless literal, as JFlex's %caseless treats literals (but not character classes). */
function ci(literal: string): string {
  return [...literal]
    .map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")))
    .join("");
}

/** Caseless alternation of literals, e.g. abbreviation lists. */
function ciAny(literals: string): string {
  return literals.split(" ").map(ci).join("|");
}

// Character classes and macros of PTBLexer.flex.
const LETTER = "\\p{L}";
const DIGIT = "\\p{Nd}";
const APOS = "(?:['\\u0092\\u2019]|&apos;)";
const APOS_ETC = "(?:['\\u0091\\u0092\\u2018\\u2019\\u201B]|&apos;)";
const WORD = "[\\p{L}\\p{M}\\u00AD]+";
const REDAUX = `${APOS}(?:[msdMSD]|${ciAny("re ve ll")})`;
const SWORD = "[A-Za-z\\u00AD]*[A-MO-Za-mo-z]\\u00AD*"; // a word that can take n't (not ending in n)
const SREDAUX = `[nN]${APOS_ETC}[tT]`;
const SPACE = "[ \\t\\u00A0\\u2000-\\u200A\\u3000]";
const HYPHEN = "[-_\\u058A\\u2010\\u2011]";
const INSENTP = "[,;:]";
const NUM = `(?:${DIGIT}*(?:[.:,\\u00AD\\u066B\\u066C]${DIGIT}+)+|${DIGIT}+)`;
const ACRO =
  `(?:${ci("U.S.-")}(?:${ciAny("U.K U.S.S.R")})|(?:${ciAny("Canada Sino Korean EU Japan non")})-${ci("U.S")}|` +
  "[A-Za-z](?:\\.[A-Za-z])+)";
/** Words with an apostrophe inside that stay whole ("o'clock", "rock 'n' roll"); one rule each. */
const APOWORDS = [
  `${APOS}[nN]${APOS}?`,
  `[lLdDjJ]${APOS}`,
  `(?:${ciAny("Dunkin somethin ol")})${APOS}`,
  `${APOS}${ci("em")}`,
  `[A-HJ-XZn]${APOS_ETC}${LETTER}{2,}`,
  `${APOS}[2-9]0[sS]`,
  `${APOS}${ci("til")}[lL]?`,
  `${LETTER}+[aeiouyAEIOUY]${APOS_ETC}[aeiouA-Z]${LETTER}*`,
  `${APOS}${ci("cause")}`,
  `${ci("cont'd")}\\.?`,
  ciAny("'twas nor'easter c'mon e'er s'mores ev'ry li'l nat'l"),
];
const THING_PART = `(?:[dDoOlL]${APOS_ETC}[\\p{L}\\p{Nd}])?[\\p{L}\\p{Nd}]+`;
const THING = `${THING_PART}(?:${HYPHEN}${THING_PART})*`;
const HTHING = `[A-Za-z0-9][A-Za-z0-9.,\\u00AD]*(?:-(?:${ACRO}\\.|[A-Za-z0-9\\u00AD]+))+`;
const THINGA = `[A-Z]+(?:(?:[+&]|${ci("&amp;")})[A-Z]+)+`;
const THING3 = "[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\\\?\\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}";
const URL_END = "[^ \\t\\n\\f\\r\"<>|.!?(){},-]";
const FULLURL = `${ci("http")}[sS]?:\\/\\/[^ \\t\\n\\f\\r"<>|()]+${URL_END}`;
const LIKELYURL =
  `(?:(?:${ci("www.")}(?:[^ \\t\\n\\f\\r"<>|.!?(){},]+\\.)+[a-zA-Z]{2,4})|` +
  `(?:(?:[^ \\t\\n\\f\\r"\`'<>|.!?(){},-_$]+\\.)+(?:${ciAny("com net org edu")})))` +
  `(?:\\/[^ \\t\\n\\f\\r"<>|()]+${URL_END})?`;
const EMAIL = "[a-zA-Z0-9][^ \\t\\n\\f\\r\"<>|()\\u00A0]*@(?:[^ \\t\\n\\f\\r\"<>|().\\u00A0]+\\.)+[a-zA-Z]{2,4}";

// Abbreviations (PTBLexer's lists, induced from the 1987 WSJ). A capital in [] is case-sensitive.
const AB_STATE =
  "Ala|Ariz|[A]rk|Calif|Colo|Conn|Dak|Del|Fla|Ga|[I]ll|Ind|Kans?|Ky|La|[M]ass|Md|Mich|Minn|[M]iss|Mo|Mont|" +
  "Neb|Nev|Okla|[O]re|Pa|Penn|Tenn|Tex|Va|Vt|[W]ash|Wisc?|Wyo";
const AB_TITLE =
  "Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Mt|Capt|" +
  "Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det";
const ABBREV1_WORDS =
  "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thurs|Fri|" +
  `${AB_STATE}|Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys|Nos?|Prop|Ph|tel|est|ext|sq|ft|` +
  "Jr|Sr|Bros|(?:Ed|Ph)\\.D|Blvd|Rd|Esq|etc|al|seq";
const ABBREV4_WORDS = `${ACRO}|[A-Za-z]|${AB_TITLE}|vs|Alex|Wm|Jos|Cie|a\\.k\\.a|cf|TREAS|Invt|Elec|Natl|M[ft]g`;

/** Applies %caseless to the letters of a pattern outside character classes. */
function caseless(pattern: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      out += c + pattern[++i];
    } else if (c === "[") {
      inClass = true;
      out += c;
    } else if (c === "]") {
      inClass = false;
      out += c;
    } else {
      out += !inClass && /[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
    }
  }
  return out;
}

const ABBREV1 = `(?:${caseless(ABBREV1_WORDS)})\\.`;
const ABBREV2 = `(?:${caseless(ABBREV4_WORDS)})\\.`;
/** A sentence end after an abbreviation: space, then space, a capital, or the end of the caption. */
const SENTEND = `(?:${SPACE}(?:${SPACE}|[A-Z]|$)|$)`;

/** Backslash-escapes `char` where not already escaped, as PTB3 does for "/" and "*". */
function delimit(text: string, char: string): string {
  return text.replace(new RegExp(`(^|[^\\\\])(\\${char}+)`, "g"), (_, before: string, run: string) =>
    before + run.replace(new RegExp(`\\${char}`, "g"), `\\${char}`),
  );
}

/** PTB3 ("LaTeX") quotes: ` `` for opening quotes, ' '' for closing ones. */
function latexQuotes(text: string, probablyLeft: boolean): string {
  const out = probablyLeft
    ? text.replace(/&apos;|'/g, "`").replace(/"|&quot;/g, "``")
    : text.replace(/&apos;|'/g, "'").replace(/"|&quot;/g, "''");
  return out
    .replace(/[\u0091\u2018\u201B\u2039]/g, "`")
    .replace(/[\u0092\u2019\u203A]/g, "'")
    .replace(/[\u0093\u201C\u00AB]/g, "``")
    .replace(/[\u0094\u201D\u00BB]/g, "''");
}

const removeSoftHyphens = (text: string): string => text.replace(/\u00AD/g, "");
const normalizeAmp = (text: string): string => text.replace(/&amp;/gi, "&");
const always = (token: string) => (): string[] => [token];
const same = (text: string): string[] => [text];
const word = (text: string): string[] => [americanize(removeSoftHyphens(text))];
const quote = (probablyLeft: boolean) => (text: string): string[] => [latexQuotes(text, probablyLeft)];

/** Composed fractions the Java tool spells out (its line for "⅔" maps "⅓" again, so "⅔" stays). */
const FRACTIONS: Record<string, string> = { "¼": "1\\/4", "½": "1\\/2", "¾": "3\\/4", "⅓": "1\\/3" };

/** [pattern, trailing context or "", emit, consume?] */
type RuleRow = [string, string, Rule["emit"], Rule["consume"]?];

/**
 * The rules in PTBLexer.flex's order (ties go to the earlier rule). A JavaScript
 * alternation takes the first alternative that matches, not the longest as JFlex does, so
 * alternatives that can overlap are ordered longest-first or split into rules of their own.
 */
const RULE_TABLE: RuleRow[] = [
  [ci("cannot"), "", (t) => [t.slice(0, 3)], () => 3],
  ["&(?:MD|mdash|ndash);|[\\u0096\\u0097\\u2013\\u2014\\u2015]", "", always("--")],
  [ci("&amp;"), "", always("&")],
  [WORD, REDAUX, word],
  [SWORD, SREDAUX, (t) => [removeSoftHyphens(t)]],
  [WORD, "", word],
  ...APOWORDS.map((apoword): RuleRow => [apoword, "", same]),
  [`[yY]${APOS}`, LETTER, same],
  [FULLURL, "", (t) => [delimit(delimit(t, "/"), "*")]],
  [LIKELYURL, "", (t) => [delimit(delimit(t, "/"), "*")]],
  [EMAIL, "", same],
  [REDAUX, "[^A-Za-z]", quote(false)],
  [SREDAUX, "", quote(false)],
  [`${DIGIT}{1,2}[\\-\\/]${DIGIT}{1,2}[\\-\\/]${DIGIT}{2,4}`, "", (t) => [delimit(t, "/")]],
  [`[\\-+]?${NUM}`, "", (t) => [removeSoftHyphens(t)]],
  [`(?:${DIGIT}{1,4}[- \\u00A0])?${DIGIT}{1,4}(?:\\\\?\\/|\\u2044)${DIGIT}{1,4}`, "", (t) => [delimit(t, "/").replace(/ /g, "\u00A0")]],
  ["[\\u00BC-\\u00BE\\u2153-\\u215E]", "", (t) => [FRACTIONS[t] ?? t]],
  [`-(?:${ciAny("RRB LRB RCB LCB RSB LSB")})-|${ci("C.D.s")}|${ciAny("pro- anti- S&P-500 S&amp;P-500 S&Ls S&amp;Ls")}|` +
    `${ci("Cap")}${APOS}[nN]|[cC]${APOS}${ci("est")}`, "", (t) => [normalizeAmp(t)]],
  [THING3, "", (t) => [delimit(t, "/")]],
  ["[A-Z]*\\$|#", "", same],
  ["[\\u00A2\\u00A3\\u00A4\\u00A5\\u0080\\u20A0\\u20AC\\u060B\\u0E3F\\u20A4\\uFFE0\\uFFE1\\uFFE5\\uFFE6]", "", (t) => [
    t.replace(/\u00A2/g, "cents").replace(/\u00A3/g, "#").replace(/[\u0080\u00A4\u20A0\u20AC]/g, "$"),
  ]],
  // A sentence-final abbreviation keeps its period and the period is also returned alone.
  [ABBREV1, SENTEND, same, (t) => t.length - 1],
  [ABBREV1, "", same],
  [ABBREV2, "", same],
  [caseless(ABBREV4_WORDS), SPACE, same],
  [ACRO, `(?:\\s|$)`, same],
  [`${APOS}[0-9][0-9]`, `(?:\\s|$)`, same],
  [WORD + "\\.", INSENTP, (t) => [removeSoftHyphens(t)]],
  [`"|&quot;`, "[A-Za-z0-9$]", quote(true)],
  [`"|&quot;`, "", quote(false)],
  ["\\+|[%&\\u2030\\u2031]|~|\\^|=", "", same],
  ["\\||\\\\", "", () => []],
  ["[<\\[]|&lt;|\\(", "", always("-LRB-")],
  ["[>\\]]|&gt;|\\)", "", always("-RRB-")],
  ["\\{", "", always("-LCB-")],
  ["\\}", "", always("-RCB-")],
  ["-+", "", (t) => [t.length >= 3 && t.length <= 4 ? "--" : t]],
  ["\\.{3,5}|(?:\\.[ \\u00A0]){2,4}\\.|[\\u0085\\u2026]", "", always("...")],
  ["@+|#+|_+", "", same],
  ["\\*+|(?:\\\\\\*){1,3}", "", (t) => [delimit(t, "*")]],
  [INSENTP, "", same],
  ["[?!]+", "", same],
  ["[.¡¿\\u037E\\u0589\\u061F\\u06D4\\u0700-\\u0702\\u07FA]", "", same],
  ["\\/", "", always("\\/")],
  [HTHING + "\\.", INSENTP, (t) => [removeSoftHyphens(t)]],
  [HTHING, "", (t) => [removeSoftHyphens(t)]],
  [THING + "\\.", INSENTP, same],
  [THING, "", same],
  [THINGA + "\\.", INSENTP, (t) => [normalizeAmp(t)]],
  [THINGA, "", (t) => [normalizeAmp(t)]],
  ["'", "[A-Za-z][^ \\t\\n\\r\\u00A0]", quote(true)],
  [REDAUX, "", quote(false)],
  [`''|[\`\\u2018\\u2019\\u201A\\u201B\\u201C\\u201D\\u0091-\\u0094\\u201E\\u201F\\u2039\\u203A\\u00AB\\u00BB]{1,2}|${APOS}`, "", quote(false)],
  ["[\\u00A6-\\u00A9\\u00AC\\u00AE-\\u00BA\\u00D7\\u00F7\\u2020-\\u2023\\u2032-\\u2038\\u2044\\u2100-\\u214F" +
    "\\u2190-\\u23FF\\u2600-\\u26FF\\uFF01-\\uFF0F\\uFF1A-\\uFF20\\uFF3B-\\uFF40\\uFF5B-\\uFF65]", "", same],
];

const RULES: Rule[] = RULE_TABLE.map(([match, context, emit, consume]) => ({
  // The context is also a lookahead of the match, so that backtracking finds a split
  // where the context holds ("don't" → SWORD "do" + SREDAUX "n't").
  match: new RegExp(context ? `(?:${match})(?=${context})` : `(?:${match})`, "uy"),
  context: context ? new RegExp(context, "uy") : undefined,
  emit,
  consume,
}));

/** A run of ASCII letters ending at a space or the end: a plain word under every rule. */
const PLAIN_WORD = /[A-Za-z]+(?=\s|$)/y;

/** Length of `re` matched at `at` in `text`, or -1. */
function matchLength(re: RegExp, text: string, at: number): number {
  re.lastIndex = at;
  const m = re.exec(text);
  return m === null ? -1 : m[0].length;
}

/**
 * The raw tokens of PTBLexer for `text` (one caption), before lower-casing and before the
 * punctuation filter: e.g. "A (red) bus." → ["A", "-LRB-", "red", "-RRB-", "bus", "."].
 */
export function ptbLex(text: string): string[] {
  const tokens: string[] = [];
  let at = 0;
  while (at < text.length) {
    const char = String.fromCodePoint(text.codePointAt(at)!);
    if (/\s/.test(char)) {
      at++;
      continue;
    }
    // Fast path for the common case; the general rules would give the same tokens.
    const plain = matchLength(PLAIN_WORD, text, at);
    if (plain > 0 && !/^cannot$/i.test(text.slice(at, at + plain))) {
      tokens.push(americanize(text.slice(at, at + plain)));
      at += plain;
      continue;
    }
    let best: Rule | undefined;
    let bestLength = 0;
    let bestText = "";
    for (const rule of RULES) {
      const length = matchLength(rule.match, text, at);
      if (length <= 0) continue;
      const contextLength = rule.context ? matchLength(rule.context, text, at + length) : 0;
      const total = length + contextLength;
      if (contextLength >= 0 && total > bestLength) {
        best = rule;
        bestLength = total;
        bestText = text.slice(at, at + length);
      }
    }
    if (best === undefined) {
      at += char.length; // untokenizable (e.g. emoji): deleted, as by default in Java
      continue;
    }
    tokens.push(...best.emit(bestText));
    at += best.consume ? best.consume(bestText) : bestText.length;
  }
  return tokens;
}

/**
 * One caption as pycocoevalcap's PTBTokenizer returns it: PTB tokens, lower-cased,
 * punctuation removed, joined by single spaces. "A dog's toy." → "a dog 's toy".
 */
export function ptbTokenize(caption: string): string {
  return ptbLex(caption.replace(/\n/g, " "))
    .map((token) => token.toLowerCase())
    .filter((token) => !PUNCTUATION.has(token))
    .join(" ");
}
