/**
 * British → American spelling, as Stanford's PTBTokenizer applies it to plain words by
 * default (its `americanize` option, on in the CoreNLP 3.4.1 that pycocoevalcap runs).
 * So the official evaluation scores "grey" and "gray", "colour" and "color" as the same
 * word, and so must we. Ported from CoreNLP's Americanize.java: a fixed word list, then a
 * few suffix patterns. It is case-sensitive (the list is lower case), which is why a
 * capitalised "Grey" at the start of a caption stays "grey" after lower-casing.
 */

/** No word shorter than this is changed. */
const MIN_LENGTH_CHANGED = 4;
/** No word shorter than this is changed by a pattern. */
const MIN_LENGTH_PATTERN = 6;

const WORDS = new Map<string, string>(
  (
    "anaesthetic:anesthetic analogue:analog analogues:analogs analyse:analyze analysed:analyzed " +
    "analysing:analyzing armoured:armored cancelled:canceled cancelling:canceling candour:candor " +
    "capitalise:capitalize capitalised:capitalized capitalisation:capitalization centre:center " +
    "chimaeric:chimeric clamour:clamor coloured:colored colouring:coloring colourful:colorful " +
    "defence:defense Defence:Defense discolour:discolor discolours:discolors discoloured:discolored " +
    "discolouring:discoloring encyclopaedia:encyclopedia endeavour:endeavor endeavours:endeavors " +
    "endeavoured:endeavored endeavouring:endeavoring fervour:fervor favour:favor favours:favors " +
    "favoured:favored favouring:favoring favourite:favorite favourites:favorites fibre:fiber " +
    "fibres:fibers finalise:finalize finalised:finalized finalising:finalizing flavour:flavor " +
    "flavours:flavors flavoured:flavored flavouring:flavoring glamour:glamour grey:gray harbour:harbor " +
    "harbours:harbors homologue:homolog homologues:homologs honour:honor honours:honors " +
    "honoured:honored honouring:honoring honourable:honorable humour:humor humours:humors " +
    "humoured:humored humouring:humoring kerb:curb labelled:labeled labelling:labeling labour:labor " +
    "Labour:Labor labours:labors laboured:labored labouring:laboring leant:leaned learnt:learned " +
    "localise:localize localised:localized manoeuvre:maneuver manoeuvres:maneuvers maximise:maximize " +
    "maximised:maximized maximising:maximizing meagre:meager minimise:minimize minimised:minimized " +
    "minimising:minimizing modernise:modernize modernised:modernized modernising:modernizing " +
    "misdemeanour:misdemeanor misdemeanours:misdemeanors neighbour:neighbor neighbours:neighbors " +
    "neighbourhood:neighborhood neighbourhoods:neighborhoods oestrogen:estrogen oestrogens:estrogens " +
    "organisation:organization organisations:organizations penalise:penalize penalised:penalized " +
    "popularise:popularize popularised:popularized popularises:popularizes popularising:popularizing " +
    "practise:practice practised:practiced pressurise:pressurize pressurised:pressurized " +
    "pressurises:pressurizes pressurising:pressurizing realise:realize realised:realized " +
    "realising:realizing realises:realizes recognise:recognize recognised:recognized " +
    "recognising:recognizing recognises:recognizes rumoured:rumored rumouring:rumoring savour:savor " +
    "savours:savors savoured:savored savouring:savoring splendour:splendor splendours:splendors " +
    "theatre:theater theatres:theaters titre:titer titres:titers travelled:traveled travelling:traveling"
  )
    .split(" ")
    .map((pair) => pair.split(":") as [string, string]),
);

/** Words ending in "our" that are not British spellings of "-or" words. */
const OUR_EXCEPTIONS = new RegExp(
  "abatjour|beflour|bonjour|calambour|carrefour|cornflour|contour|de[tv]our|dortour|dyvour|downpour|" +
    "giaour|glamour|holour|inpour|outpour|pandour|paramour|pompadour|recontour|repour|ryeflour|" +
    "sompnour|tambour|troubadour|tregetour|velour",
);

/** Suffix/infix patterns, tried in order; the first that matches (and is not excepted) rewrites the word. */
const PATTERNS: { pattern: RegExp; replacement: string; except?: RegExp }[] = [
  { pattern: /haem(at)?o/g, replacement: "hem$1o" },
  { pattern: /aemia$/g, replacement: "emia" },
  { pattern: /([lL])eukaem/g, replacement: "$1eukem" },
  { pattern: /programme(s?)$/g, replacement: "program$1" },
  { pattern: /^([a-z]{3,})our(s?)$/g, replacement: "$1or$2", except: OUR_EXCEPTIONS },
];

/** The American spelling of `word` where CoreNLP knows one, else `word` unchanged. */
export function americanize(word: string): string {
  if (word.length < MIN_LENGTH_CHANGED) return word;
  const listed = WORDS.get(word);
  if (listed !== undefined) return listed;
  if (word.length < MIN_LENGTH_PATTERN) return word;
  for (const { pattern, replacement, except } of PATTERNS) {
    pattern.lastIndex = 0;
    if (!pattern.test(word)) continue;
    if (except?.test(word)) continue;
    return word.replace(pattern, replacement);
  }
  return word;
}
