/**
 * The official COCO caption evaluation's tokenizer, in TypeScript (not the tokenizer that
 * builds the vocabulary: that one is NLTK's, in lib/data/tokenizer.ts).
 *
 * pycocoevalcap (tokenizer/ptbtokenizer.py) turns each caption's "\n" into a space, joins
 * all the captions with "\n" into one file, and runs Stanford CoreNLP 3.4.1's PTBTokenizer
 * on it (`-preserveLines -lowerCase`): one output line per caption, tokens separated by
 * spaces, lower-cased after lexing. It then drops the tokens in PUNCTUATION:
 *
 *   "A dog's toy, isn't it?"  →  "a dog 's toy is n't it"
 *
 * Scores are only comparable with published ones if captions are tokenised exactly so.
 * This module ports that lexer (PTBLexer.flex) and gives the official tokens for every one
 * of 16,055 captions of a reference fixture (test/metrics.test.ts: Flickr8k and COCO
 * captions, a model's outputs, hard cases). What 3.4.1 does, quirks included:
 * - clitics split off: "dog's" → "dog 's", "don't" → "do n't", "can't" → "ca n't",
 *   "cannot" → "can not"; "o'clock", "rock 'n' roll" stay whole;
 * - no Americanisation ("grey", "colour" stay) and no escaping ("1/2", "and/or" stay);
 * - letters joined by a period, "!" or "?" are one word: "fork.A" → "fork.a";
 * - SGML-like tags stay whole: "<unk>", "<start>" (a lone "<" or ">" is a token of its own);
 * - numbers keep their separators ("1,000", "3.5", "5:30"); "$5" → "$ 5"; "5%" → "5 %";
 *   "23 3/4" is one token, its space made a non-breaking one;
 * - abbreviations keep their period ("st.", "mr.", "u.s.", "etc.", "e.g."; any single letter:
 *   "I. M. Pei" → "i. m. pei"), except a single letter that ends a sentence: one followed
 *   by a line break or spaces and a typical sentence opening ("A ", "The ", ...) loses it.
 *   That look-ahead crosses into the next caption, which is why captions are tokenised
 *   together (ptbTokenizeCaptions), as the official tool does;
 * - brackets become -LRB- -RRB- -LSB- -RSB- -LCB- -RCB-; the tool lower-cases them *before*
 *   pycocoevalcap filters punctuation, so they arrive as "-lrb-" etc. and are NOT dropped;
 * - "?!" is one token, not in the filter list, so it survives; so do "&", "%", "$", "#",
 *   "+", "=", "@", "*", "/"; "c++", "c#", "#hashtag", "@user" and e-mail addresses and
 *   URLs are single tokens; characters it does not know (emoji) are deleted.
 *
 * Where it can differ from the Java tool:
 * - the 3.4.1 source itself was not at hand: the rules follow PTBLexer.flex as CoreNLP had
 *   it in the releases around 3.4.1, corrected where the official output shows otherwise
 *   (Americanising, escaping, "fork.A", tags, square brackets, the sentence-final letter).
 *   Rules that no fixture caption exercises (URLs, phone numbers, currency signs, rare
 *   symbols) are ported from those sources but not verified;
 * - other line breaks inside a caption (\r, U+2028, \v, \f) are spaces here; the Java tool
 *   starts a new output line on them and so misaligns every later caption;
 * - Java's letter and digit classes are approximated with \p{L}, \p{M} and \p{Nd}.
 *
 * How the lexer works: like the JFlex scanner it ports, it scans left to right; at each
 * position every rule is tried and the longest match wins (a rule's trailing context counts
 * toward its length), ties going to the earlier rule. Each rule says what token(s) it emits.
 */

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
  /** Sticky pattern that must follow the match; not consumed, but counted in the match length. */
  context?: RegExp;
  /** The tokens for the matched text. */
  emit: (text: string) => string[];
}

/** A caseless literal, as JFlex's %caseless treats literals (but not character classes). */
function ci(literal: string): string {
  return [...literal]
    .map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")))
    .join("");
}

/** Caseless alternation of space-separated literals. */
function ciAny(literals: string): string {
  return literals.split(" ").map(ci).join("|");
}

/** Applies %caseless to the letters of a pattern outside character classes ("[M]iss": "M" stays as is). */
function caseless(pattern: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      out += c + pattern[++i];
    } else if (c === "[" || c === "]") {
      inClass = c === "[";
      out += c;
    } else {
      out += !inClass && /[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
    }
  }
  return out;
}

// ---- Character classes and macros of PTBLexer.flex ----

const LETTER = "\\p{L}";
const DIGIT = "\\p{Nd}";
/** Spaces (not line breaks) and, for the look-aheads that accept them, line breaks. */
const SPACE = "[ \\t\\u00A0\\u2000-\\u200A\\u3000]";
const SPACENL = "[ \\t\\u00A0\\u2000-\\u200A\\u3000\\n]";
const SGML = "<\\/?[A-Za-z!?][^>\\r\\n]*>";
/** A sentence end after an abbreviation: space or line break, then another, a capital or a tag. */
const SENTEND = `${SPACENL}(?:${SPACENL}|[A-Z]|${SGML})`;
const APOS = "(?:['\\u0092\\u2019]|&apos;)";
const APOS_ETC = "(?:['\\u0091\\u0092\\u2018\\u2019\\u201B]|&apos;)";
/** A letter of a word: also combining marks, the soft hyphen and HTML-escaped accented vowels. */
const WORD_CHAR = `(?:[\\p{L}\\p{M}\\u00AD]|&[aeiouAEIOU](?:${ciAny("acute grave uml")});)`;
/** Letters, possibly joined by ".", "!" or "?" ("fork.A" is one word in 3.4.1). */
const WORD = `${WORD_CHAR}+(?:[.!?]${WORD_CHAR}+)*`;
const REDAUX = `${APOS}(?:[msdMSD]|${ciAny("re ve ll")})`;
const SWORD = "[A-Za-z\\u00AD]*[A-MO-Za-mo-z]\\u00AD*"; // a word that can take n't (not ending in n)
const SREDAUX = `[nN]${APOS_ETC}[tT]`;
const HYPHEN = "[-_\\u058A\\u2010\\u2011]";
const INSENTP = "[,;:\\u3001]";
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
const EMAIL = '[a-zA-Z0-9][^ \\t\\n\\f\\r"<>|()\\u00A0]*@(?:[^ \\t\\n\\f\\r"<>|().\\u00A0]+\\.)*[^ \\t\\n\\f\\r"<>|().\\u00A0]+';
/** Phone numbers: "(650) 723-2300", "+44 20 7946 0958", "650.723.2300". */
const PHONE =
  "(?:\\([0-9]{2,3}\\)[ \\u00A0]?|(?:\\+\\+?)?(?:[0-9]{2,4}[\\- \\u00A0])?[0-9]{2,4}[\\- \\u00A0])[0-9]{3,4}[\\- \\u00A0]?[0-9]{3,5}|" +
  "(?:(?:\\+\\+?)?[0-9]{2,4}\\.)?[0-9]{2,4}\\.[0-9]{3,4}\\.[0-9]{3,5}";
const TWITTER = `@[a-zA-Z_][a-zA-Z_0-9]*|#${WORD}`;

/** Symbols that stand alone: "+", "%", "&", "°", "×", "→", "∀" ... */
const MISC_SYMBOL =
  "[+%&~\\^|\\\\\\u00A6-\\u00A9\\u00AC\\u00AE-\\u00BA\\u00D7\\u00F7\\u0387\\u05BE\\u05C0\\u05C3\\u05C6\\u05F3\\u05F4" +
  "\\u0600-\\u0603\\u0606-\\u060A\\u060C\\u0614\\u061B\\u061E\\u066A\\u066D\\u0703-\\u070D\\u07F6-\\u07F8\\u0964\\u0965" +
  "\\u0E4F\\u1FBD\\u2016\\u2017\\u2020-\\u2023\\u2030-\\u2038\\u203B\\u203E-\\u2042\\u2044\\u207A-\\u207F\\u208A-\\u208E" +
  "\\u2100-\\u214F\\u2190-\\u21FF\\u2200-\\u2BFF\\u3012\\u30FB\\uFF01-\\uFF0F\\uFF1A-\\uFF20\\uFF3B-\\uFF40\\uFF5B-\\uFF65]";

// Abbreviations (PTBLexer's lists, induced from the 1987 WSJ). A capital in [] is case-sensitive.
const AB_STATE =
  "Ala|Ariz|[A]rk|Calif|Colo|Conn|Dak|Del|Fla|Ga|[I]ll|Ind|Kans?|Ky|La|[M]ass|Md|Mich|Minn|[M]iss|Mo|Mont|" +
  "Neb|Nev|Okla|[O]re|Pa|Penn|Tenn|Tex|Va|Vt|[W]ash|Wisc?|Wyo";
const AB_TITLE =
  "Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Mt|Capt|" +
  "Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det";
/** Usually followed by a lower-case word. */
const ABBREV1_WORDS =
  "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thurs|Fri|" +
  `${AB_STATE}|Inc|Cos?|Corp|Pp?tys?|Ltd|Plc|Bancorp|Dept|Bhd|Assn|Univ|Intl|Sys|Nos?|Prop|Ph|tel|est|ext|sq|ft|` +
  "Jr|Sr|Bros|(?:Ed|Ph)\\.D|Blvd|Rd|Esq|etc|al|seq";
/** Usually followed by a capitalised word (a name). */
const ABBREV4_WORDS = `${ACRO}|[A-Za-z]|${AB_TITLE}|vs|Alex|Wm|Jos|Cie|a\\.k\\.a|cf|TREAS|Invt|Elec|Natl|M[ft]g`;
const ABBREV1 = `(?:${caseless(ABBREV1_WORDS)})\\.`;
const ABBREV2 = `(?:${caseless(ABBREV4_WORDS)})\\.`;
/**
 * The words after which an acronym's period is taken to end a sentence (case-sensitive
 * first letter, then a space).
 */
const SENTENCE_OPENERS = caseless(
  "[A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|[H]e|[H]er|[H]ere|[H]owever|" +
    "[I]f|[I]n|[I]t|[L]ast|[M]any|[M]ore|[M]r\\.|[M]s\\.|[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he|[S]ince|[S]o|" +
    "[S]ome|[S]uch|[T]hat|[T]he|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile|[W]hat|[Y]et|[Y]ou",
);

// ---- What the rules emit ----

const removeSoftHyphens = (text: string): string => text.replace(/\u00AD/g, "") || "-";
const normalizeAmp = (text: string): string => text.replace(/&amp;/gi, "&");
const nonBreakingSpaces = (text: string): string => text.replace(/ /g, "\u00A0");

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

/** Composed fractions the Java tool spells out (its line for "⅔" maps "⅓" again, so "⅔" stays). */
const FRACTIONS: Record<string, string> = { "¼": "1/4", "½": "1/2", "¾": "3/4", "⅓": "1/3" };

/**
 * An acronym or single letter with its period before a sentence opener: the period ends
 * the sentence. A single letter gives it up ("S." → "S", "."); a longer acronym keeps it
 * and the period is returned again ("U.S." → "U.S.", ".").
 */
const sentenceFinalAcronym = (text: string): string[] => (text.length === 2 ? [text[0], "."] : [text, "."]);

const same = (text: string): string[] => [text];
const always = (token: string) => (): string[] => [token];
const word = (text: string): string[] => [removeSoftHyphens(text)];
const quote = (probablyLeft: boolean) => (text: string): string[] => [latexQuotes(text, probablyLeft)];

/** [pattern, trailing context or "", emit] */
type RuleRow = [string, string, Rule["emit"]];

/**
 * The rules in PTBLexer.flex's order (ties go to the earlier rule). A JavaScript
 * alternation takes the first alternative that matches, not the longest as JFlex does, so
 * alternatives that can overlap are ordered longest-first or split into rules of their own.
 */
const RULE_TABLE: RuleRow[] = [
  [ci("can"), ci("not"), same], // "cannot" → "can", then "not" is lexed again
  [SGML, "", (t) => [nonBreakingSpaces(t)]],
  ["&(?:MD|mdash|ndash);|[\\u0096\\u0097\\u2013\\u2014\\u2015]", "", always("--")],
  [ci("&amp;"), "", always("&")],
  ["&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", "", same],
  [WORD, REDAUX, word],
  [SWORD, SREDAUX, word],
  [WORD, "", word],
  ...APOWORDS.map((apoword): RuleRow => [apoword, "", same]),
  [`[yY]${APOS}`, LETTER, same],
  [FULLURL, "", same],
  [LIKELYURL, "", same],
  [EMAIL, "", same],
  [TWITTER, "", same],
  [REDAUX, "[^A-Za-z]", quote(false)],
  [SREDAUX, "", quote(false)],
  [`${DIGIT}{1,2}[\\-\\/]${DIGIT}{1,2}[\\-\\/]${DIGIT}{2,4}`, "", same],
  [`[\\-+]?${NUM}`, "", word],
  ["[\\u207A\\u207B\\u208A\\u208B]?(?:[\\u2070\\u00B9\\u00B2\\u00B3\\u2074-\\u2079]+|[\\u2080-\\u2089]+)", "", same],
  [`(?:${DIGIT}{1,4}[- \\u00A0])?${DIGIT}{1,4}(?:\\\\?\\/|\\u2044)${DIGIT}{1,4}`, "", (t) => [nonBreakingSpaces(t)]],
  ["[\\u00BC-\\u00BE\\u2153-\\u215E]", "", (t) => [FRACTIONS[t] ?? t]],
  [`-(?:${ciAny("RRB LRB RCB LCB RSB LSB")})-|${ci("C.D.s")}|${ciAny("pro- anti- S&P-500 S&amp;P-500 S&Ls S&amp;Ls")}|` +
    `${ci("Cap")}${APOS}[nN]|[cC]${APOS}${ci("est")}`, "", (t) => [normalizeAmp(t)]],
  [THING3, "", same],
  ["[A-Z]*\\$|#", "", same],
  ["[\\u00A2\\u00A3\\u00A4\\u00A5\\u0080\\u20A0\\u20AC\\u060B\\u0E3F\\u20A4\\uFFE0\\uFFE1\\uFFE5\\uFFE6]", "", (t) => [
    t.replace(/\u00A2/g, "cents").replace(/\u00A3/g, "#").replace(/[\u0080\u00A4\u20A0\u20AC]/g, "$"),
  ]],
  // An acronym or single letter whose period ends a sentence ("... Ave S.\nA train ...").
  [`[A-Za-z](?:\\.[A-Za-z])*\\.`, `${SPACENL}+(?:${SENTENCE_OPENERS})${SPACE}`, sentenceFinalAcronym],
  // A sentence-final ABBREV1 keeps its period and the period is also returned alone.
  [ABBREV1, SENTEND, (t) => [t, "."]],
  [ABBREV1, "", same],
  [ABBREV2, "", same],
  [caseless(ABBREV4_WORDS), SPACE, same],
  [ACRO, SPACENL, same],
  [`${APOS}[0-9][0-9]`, SPACENL, same],
  [WORD + "\\.", INSENTP, word],
  [PHONE, "", (t) => [nonBreakingSpaces(t).replace(/\(/g, "-LRB-").replace(/\)/g, "-RRB-")]],
  [`"|&quot;`, "[A-Za-z0-9$]", quote(true)],
  [`"|&quot;`, "", quote(false)],
  [`<|${ci("&lt;")}`, "", always("<")],
  [`>|${ci("&gt;")}`, "", always(">")],
  ["\\(", "", always("-LRB-")],
  ["\\)", "", always("-RRB-")],
  ["\\[", "", always("-LSB-")],
  ["\\]", "", always("-RSB-")],
  ["\\{", "", always("-LCB-")],
  ["\\}", "", always("-RCB-")],
  ["-+", "", (t) => [t.length >= 3 && t.length <= 4 ? "--" : t]],
  ["\\.{3,5}|(?:\\.[ \\u00A0]){2,4}\\.|[\\u0085\\u2026]", "", always("...")],
  ["@+|#+|_+", "", same],
  ["\\*+|(?:\\\\\\*){1,3}", "", same],
  [INSENTP, "", same],
  ["[?!]+", "", same],
  ["[.¡¿\\u037E\\u0589\\u061F\\u06D4\\u0700-\\u0702\\u07FA\\u3002]", "", same],
  ["=", "", same],
  ["\\/", "", same],
  [HTHING + "\\.", INSENTP, word],
  [HTHING, "", word],
  [THING + "\\.", INSENTP, same],
  [THING, "", same],
  [THINGA + "\\.", INSENTP, (t) => [normalizeAmp(t)]],
  [THINGA, "", (t) => [normalizeAmp(t)]],
  ["'", "[A-Za-z][^ \\t\\n\\r\\u00A0]", quote(true)],
  [REDAUX, "", quote(false)],
  [`''|[\`\\u2018\\u2019\\u201A\\u201B\\u201C\\u201D\\u0091-\\u0094\\u201E\\u201F\\u2039\\u203A\\u00AB\\u00BB]{1,2}|${APOS}`, "", quote(false)],
  ["<<|>>", "", same],
  [MISC_SYMBOL, "", same],
  [ciAny("c++ c# f#"), "", same],
];

const RULES: Rule[] = RULE_TABLE.map(([match, context, emit]) => ({
  // The context is also a lookahead of the match, so that backtracking finds a split
  // where the context holds ("don't" → SWORD "do" + SREDAUX "n't").
  match: new RegExp(context ? `(?:${match})(?=${context})` : `(?:${match})`, "uy"),
  context: context ? new RegExp(context, "uy") : undefined,
  emit,
}));

/** A run of ASCII letters ending at a space or the end: a plain word under every rule. */
const PLAIN_WORD = /[A-Za-z]+(?=\s|$)/y;
/** What the lexer skips between tokens: spaces, and "&nbsp;". */
const SKIPPED = /[ \t\u00A0\u2000-\u200A\u3000]|&nbsp;/y;

/** Length of `re` matched at `at` in `text`, or -1. */
function matchLength(re: RegExp, text: string, at: number): number {
  re.lastIndex = at;
  const m = re.exec(text);
  return m === null ? -1 : m[0].length;
}

/** The longest match of any rule at `at` (ties to the earlier rule): its rule and text, or undefined. */
function longestMatch(text: string, at: number): { rule: Rule; matched: string } | undefined {
  let best: { rule: Rule; matched: string } | undefined;
  let bestLength = 0;
  for (const rule of RULES) {
    const length = matchLength(rule.match, text, at);
    if (length <= 0) continue;
    const contextLength = rule.context ? matchLength(rule.context, text, at + length) : 0;
    if (contextLength >= 0 && length + contextLength > bestLength) {
      best = { rule, matched: text.slice(at, at + length) };
      bestLength = length + contextLength;
    }
  }
  return best;
}

/**
 * The raw tokens of PTBLexer for each line of `text`, before lower-casing and before the
 * punctuation filter: "A (red) bus.\nOK" → [["A", "-LRB-", "red", "-RRB-", "bus", "."], ["OK"]].
 */
export function ptbLex(text: string): string[][] {
  const lines: string[][] = [[]];
  let at = 0;
  while (at < text.length) {
    if (text[at] === "\n") {
      lines.push([]);
      at++;
      continue;
    }
    const skipped = matchLength(SKIPPED, text, at);
    if (skipped > 0) {
      at += skipped;
      continue;
    }
    const tokens = lines[lines.length - 1];
    // Fast path for the common case; the rules would give the same token.
    const plain = matchLength(PLAIN_WORD, text, at);
    if (plain > 0 && !/^cannot$/i.test(text.slice(at, at + plain))) {
      tokens.push(text.slice(at, at + plain));
      at += plain;
      continue;
    }
    const best = longestMatch(text, at);
    if (best === undefined) {
      at += String.fromCodePoint(text.codePointAt(at)!).length; // untokenizable (e.g. emoji): deleted, as in Java
      continue;
    }
    tokens.push(...best.rule.emit(best.matched));
    at += best.matched.length;
  }
  return lines;
}

/** Line breaks other than "\n" (which pycocoevalcap turns into a space itself): spaces here, see above. */
const OTHER_LINE_BREAKS = /[\r\u000B\u000C\u2028\u2029]/g;

/**
 * Captions as pycocoevalcap's PTBTokenizer returns them, in one run as it does: PTB tokens,
 * lower-cased, punctuation removed, joined by single spaces; one string per caption.
 *
 *     ptbTokenizeCaptions(["A dog's toy.", "Two cats"]) // ["a dog 's toy", "two cats"]
 */
export function ptbTokenizeCaptions(captions: readonly string[]): string[] {
  const text = captions.map((caption) => caption.replace(/\n/g, " ").replace(OTHER_LINE_BREAKS, " ")).join("\n");
  return ptbLex(text).map((tokens) =>
    tokens
      .map((token) => token.toLowerCase())
      .filter((token) => !PUNCTUATION.has(token))
      .join(" "),
  );
}

/** One caption tokenised alone (as if it were the last line of the tool's input). "A dog's toy." → "a dog 's toy". */
export function ptbTokenize(caption: string): string {
  return ptbTokenizeCaptions([caption])[0];
}
