/**
 * Truth to the scene: does a caption of a synthetic image name what is really in it?
 *
 * The generator keeps the ground truth of every image (its objects, each with a colour
 * and a shape). A caption is read back into the objects it names, "<colour> <shape>"
 * (optionally "<size> <colour> <shape>"), and compared with the scene as multisets:
 *
 *   precision = named objects that are in the scene / objects the caption names
 *   recall    = scene objects that the caption names / objects in the scene
 *
 * "two red circles" names two red circles. A colour that is not right before a shape
 * word names no object, so the background ("on a green background") is never counted.
 * Over many images the scores are micro-averages (total matched / total named, total
 * matched / total present), so captions that name more objects weigh more.
 *
 * The "blind" baseline is the training set's most frequent caption, given to every
 * image: it ignores the image, so a model must beat it to show that it looks.
 */
import { COLORS, type Color, SHAPE_PLURALS, SHAPES, type Scene, type Shape, SIZES } from "../../data/synthetic/scene";

/** An object as a caption names it: a colour and a shape. */
export interface NamedObject {
  color: Color;
  shape: Shape;
}

/** Counts for one image, and the scores they give. */
export interface SceneMatch {
  imageId: number;
  /** Objects the caption names (with multiplicity). */
  named: number;
  /** Objects in the scene. */
  present: number;
  /** Named objects matched one-to-one with scene objects of the same colour and shape. */
  matched: number;
  precision: number;
  recall: number;
}

/** Micro-averaged scores over a set of images, with the per-image details. */
export interface SceneScores {
  precision: number;
  recall: number;
  named: number;
  present: number;
  matched: number;
  images: number;
  perImage: SceneMatch[];
}

/** Number words a count can be given with ("two red circles"). */
const COUNT_WORDS = new Map(
  Object.entries({ a: 1, an: 1, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10, both: 2 }),
);
/** How many objects a plural without a count word ("red circles") names: at least two. */
const PLURAL_WITHOUT_COUNT = 2;

const SHAPE_OF_WORD = new Map<string, { shape: Shape; plural: boolean }>([
  ...SHAPES.map((shape): [string, { shape: Shape; plural: boolean }] => [shape, { shape, plural: false }]),
  ...SHAPES.map((shape): [string, { shape: Shape; plural: boolean }] => [SHAPE_PLURALS[shape], { shape, plural: true }]),
]);
const isColor = (word: string | undefined): word is Color => (COLORS as readonly string[]).includes(word ?? "");
const isSize = (word: string | undefined): boolean => (SIZES as readonly string[]).includes(word ?? "");

/** The number a count word or numeral stands for, or undefined. */
function countOf(word: string | undefined): number | undefined {
  if (word === undefined) return undefined;
  if (/^[0-9]+$/.test(word)) return Number(word);
  return COUNT_WORDS.get(word);
}

const keyOf = (o: NamedObject): string => `${o.color} ${o.shape}`;

/**
 * The objects a caption names, one entry per object ("two red circles" gives two).
 * A "the <colour> <shape>" that repeats an object already named is a reference back to
 * it ("a red circle ... the red circle is large"), not a new object.
 */
export function parseMentions(caption: string): NamedObject[] {
  const words = caption.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  const mentions: NamedObject[] = [];
  words.forEach((word, i) => {
    const shapeWord = SHAPE_OF_WORD.get(word);
    const color = words[i - 1];
    if (shapeWord === undefined || !isColor(color)) return;
    const object: NamedObject = { color, shape: shapeWord.shape };
    let before = i - 2; // the word before "<colour> <shape>", skipping a size
    if (isSize(words[before])) before--;
    const determiner = words[before];
    if (determiner === "the" && mentions.some((m) => keyOf(m) === keyOf(object))) return;
    const count = shapeWord.plural ? countOf(determiner) ?? PLURAL_WITHOUT_COUNT : 1;
    for (let k = 0; k < count; k++) mentions.push(object);
  });
  return mentions;
}

/** Multiset of (colour, shape) keys. */
function tally(objects: readonly NamedObject[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const o of objects) counts.set(keyOf(o), (counts.get(keyOf(o)) ?? 0) + 1);
  return counts;
}

/** a / b, or 0 when b is 0 (nothing named: no precision to speak of). */
const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);

/** Compares one caption with one scene. */
export function matchScene(caption: string, scene: Scene): SceneMatch {
  const named = parseMentions(caption);
  const present = tally(scene.objects);
  let matched = 0;
  for (const [key, count] of tally(named)) matched += Math.min(count, present.get(key) ?? 0);
  return {
    imageId: scene.imageId,
    named: named.length,
    present: scene.objects.length,
    matched,
    precision: ratio(matched, named.length),
    recall: ratio(matched, scene.objects.length),
  };
}

/**
 * Micro-averaged precision and recall of the predicted captions (image id → caption)
 * against the scenes. Every prediction needs a scene; scenes without a prediction are
 * left out, so the whole split's scenes can be passed.
 */
export function sceneScores(predictions: ReadonlyMap<number, string>, scenes: readonly Scene[]): SceneScores {
  const sceneOf = new Map(scenes.map((scene) => [scene.imageId, scene]));
  const perImage = [...predictions].map(([imageId, caption]) => {
    const scene = sceneOf.get(imageId);
    if (scene === undefined) throw new Error(`sceneScores: image ${imageId} has a caption but no scene`);
    return matchScene(caption, scene);
  });
  const sum = (field: "named" | "present" | "matched") => perImage.reduce((total, m) => total + m[field], 0);
  const named = sum("named");
  const present = sum("present");
  const matched = sum("matched");
  return {
    precision: ratio(matched, named),
    recall: ratio(matched, present),
    named,
    present,
    matched,
    images: perImage.length,
    perImage,
  };
}

/** A caption in the form used to count duplicates: lower case, single spaces, no final period. */
export function normalizeCaption(caption: string): string {
  return caption.toLowerCase().replace(/\s+/g, " ").trim().replace(/\s*\.$/, "");
}

/** The most frequent (normalised) caption of the training set; ties go to the first seen. */
export function blindCaption(trainingCaptions: Iterable<string>): string {
  const counts = new Map<string, number>(); // in first-seen order
  for (const caption of trainingCaptions) {
    const key = normalizeCaption(caption);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let best: string | undefined;
  let bestCount = 0;
  for (const [caption, count] of counts) {
    if (count > bestCount) [best, bestCount] = [caption, count];
  }
  if (best === undefined) throw new Error("blindCaption: no training captions given");
  return best;
}

/**
 * What a caption gets wrong about one scene. Each named object that is not matched to one in the
 * scene counts once, in the first of these that fits it:
 *   extra      — the scene has this colour-shape pair, but fewer of them than the caption says;
 *   swapped    — the colour and the shape are both in the scene, on different objects (a binding error);
 *   wrongShape — the colour is in the scene, the shape is not;
 *   wrongColor — the shape is in the scene, the colour is not;
 *   wrongBoth  — neither is.
 * `missed` counts the scene's objects that the caption does not name.
 */
export interface SceneMistakes {
  imageId: number;
  objects: number;
  named: number;
  matched: number;
  extra: number;
  swapped: number;
  wrongShape: number;
  wrongColor: number;
  wrongBoth: number;
  missed: number;
}

export const MISTAKE_KINDS = ["swapped", "wrongShape", "wrongColor", "wrongBoth", "extra"] as const;
export type MistakeKind = (typeof MISTAKE_KINDS)[number];

/** Sorts a caption's unmatched objects into the kinds of SceneMistakes. */
export function sceneMistakes(caption: string, scene: Scene): SceneMistakes {
  const present = tally(scene.objects);
  const left = new Map(present); // scene objects not yet matched, by key
  const mistakes: SceneMistakes = {
    imageId: scene.imageId, objects: scene.objects.length, named: 0, matched: 0,
    extra: 0, swapped: 0, wrongShape: 0, wrongColor: 0, wrongBoth: 0, missed: 0,
  };
  for (const object of parseMentions(caption)) {
    mistakes.named++;
    const key = keyOf(object);
    if ((left.get(key) ?? 0) > 0) {
      left.set(key, left.get(key)! - 1);
      mistakes.matched++;
      continue;
    }
    const colorIn = scene.objects.some((o) => o.color === object.color);
    const shapeIn = scene.objects.some((o) => o.shape === object.shape);
    if (present.has(key)) mistakes.extra++;
    else if (colorIn && shapeIn) mistakes.swapped++;
    else if (colorIn) mistakes.wrongShape++;
    else if (shapeIn) mistakes.wrongColor++;
    else mistakes.wrongBoth++;
  }
  mistakes.missed = scene.objects.length - mistakes.matched;
  return mistakes;
}

/** Scene scores of a group of images (e.g. those with two objects): micro-averaged as in `sceneScores`. */
export interface SceneGroup {
  objects: number;
  images: number;
  precision: number;
  recall: number;
}

/** Precision and recall by the number of objects in the scene, fewest first. */
export function scoresByObjectCount(mistakes: readonly SceneMistakes[]): SceneGroup[] {
  const counts = [...new Set(mistakes.map((m) => m.objects))].sort((a, b) => a - b);
  return counts.map((objects) => {
    const group = mistakes.filter((m) => m.objects === objects);
    const sum = (field: "named" | "matched" | "objects") => group.reduce((total, m) => total + m[field], 0);
    return { objects, images: group.length, precision: ratio(sum("matched"), sum("named")), recall: ratio(sum("matched"), sum("objects")) };
  });
}

/** Each kind of wrong object in words, for `mistakeSummary`. */
export const MISTAKE_WORDS: Record<MistakeKind, string> = {
  swapped: "pair a colour and a shape that are both in the picture, but on different objects (a binding error)",
  wrongShape: "have a colour of the picture with a shape that is not in it",
  wrongColor: "have a shape of the picture with a colour that is not in it",
  wrongBoth: "have neither colour nor shape in the picture",
  extra: "repeat an object more times than the picture has it",
};

/**
 * A run's mistakes in words, from its numbers: scores by the number of objects in the scene, then
 * the kinds of wrong objects named, most frequent first, and the objects left unnamed.
 */
export function mistakeSummary(mistakes: readonly SceneMistakes[]): string {
  const groups = scoresByObjectCount(mistakes)
    .map((g) => `${g.objects} object${g.objects === 1 ? "" : "s"}: precision ${g.precision.toFixed(2)}, recall ${g.recall.toFixed(2)} (${g.images} images)`)
    .join("; ");
  const total = (field: keyof SceneMistakes) => mistakes.reduce((n, m) => n + (m[field] as number), 0);
  const wrong = MISTAKE_KINDS.reduce((n, kind) => n + total(kind), 0);
  const unnamed = `${total("missed")} of the ${total("objects")} objects in the pictures go unnamed.`;
  if (wrong === 0) return `By objects in the scene: ${groups}. No caption names an object that is not in its picture; ${unnamed}`;
  const kinds = MISTAKE_KINDS.map((kind) => ({ kind, n: total(kind) }))
    .filter((k) => k.n > 0)
    .sort((a, b) => b.n - a.n)
    .map((k) => `${k.n} (${Math.round((100 * k.n) / wrong)}%) ${MISTAKE_WORDS[k.kind]}`);
  return `By objects in the scene: ${groups}. Of the ${wrong} objects named that are not in their picture, ${kinds.join("; ")}. And ${unnamed}`;
}

/** A scene's objects in words: "a large red circle, a small blue star on green". */
export function sceneText(scene: Scene): string {
  return `${scene.objects.map((o) => `${o.size} ${o.color} ${o.shape}`).join(", ")} on ${scene.background}`;
}
