/**
 * Captions for a scene: five different, true, human-like sentences from a small grammar.
 *
 * Like COCO's five annotators, the captions of one image paraphrase each other: some
 * list the objects, some count them, some relate two of them ("to the left of") or
 * say where one is. Every caption keeps the contract that the scene scorer reads:
 * - an object is always said as "[size] colour shape" (the colour word right before
 *   the shape word; the size word, when said, right before the colour);
 * - plural shape words only count identical objects ("two red circles");
 * - the generic words "shape(s)" and "object(s)" never carry a colour;
 * - the background is always "<colour> background".
 */
import type { Random } from "../random";
import { RELATION_PHRASES, relationsBetween } from "./relations";
import { gridCell } from "./sample-scene";
import { SHAPE_PLURALS, type Scene, type SceneObject } from "./scene";

export const CAPTIONS_PER_IMAGE = 5;
/** Captions outside these word counts are never produced. */
export const MIN_CAPTION_WORDS = 5;
export const MAX_CAPTION_WORDS = 16;

/** One way of describing a scene; null when it does not apply or cannot be said here. */
type Template = (scene: Scene, rng: Random) => string | null;

/** True with probability one half: whether to say an optional word. */
const coin = (rng: Random) => rng.next() < 0.5;

const COUNT_WORDS: Record<number, string> = { 2: "two", 3: "three" };

/** "a red circle", "an orange star", "an image". */
function withArticle(words: string): string {
  return `${/^[aeiou]/.test(words) ? "an" : "a"} ${words}`;
}

function sameKind(a: SceneObject, b: SceneObject): boolean {
  return a.color === b.color && a.shape === b.shape;
}

/** Whether another object has this object's colour and shape, so that only its size tells them apart. */
function hasSibling(scene: Scene, object: SceneObject): boolean {
  return scene.objects.some((other) => other !== object && sameKind(other, object));
}

/** Whether another object looks exactly the same (colour, shape and size): no phrase can single it out. */
function hasTwin(scene: Scene, object: SceneObject): boolean {
  return scene.objects.some((other) => other !== object && sameKind(other, object) && other.size === object.size);
}

/** "a small red circle" or "a red circle". */
function nounPhrase(object: SceneObject, withSize: boolean): string {
  return withArticle(`${withSize ? `${object.size} ` : ""}${object.color} ${object.shape}`);
}

/** "a green background". */
function backgroundPhrase(scene: Scene): string {
  return withArticle(`${scene.background} background`);
}

/** "A", "A and B", "A, B and C". */
function listPhrase(parts: string[]): string {
  return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

/**
 * All objects of the scene as phrases, from left to right (as people tend to read a picture;
 * a fixed order also makes the captions learnable in minutes: the model need not guess which
 * object an annotator would name first); identical objects (same colour and shape) are counted
 * together, where the leftmost of them stands: ["two red circles", "a small blue square"].
 */
function objectPhrases(scene: Scene, rng: Random): string[] {
  const groups: SceneObject[][] = [];
  for (const object of leftToRight(scene.objects)) {
    const group = groups.find((g) => sameKind(g[0], object));
    if (group) group.push(object);
    else groups.push([object]);
  }
  const phrases = groups.map((group) => {
    const [first] = group;
    if (group.length === 1) return nounPhrase(first, coin(rng));
    const sameSize = group.every((o) => o.size === first.size);
    const size = sameSize && coin(rng) ? `${first.size} ` : "";
    return `${COUNT_WORDS[group.length]} ${size}${first.color} ${SHAPE_PLURALS[first.shape]}`;
  });
  return phrases;
}

/** Objects sorted by the x of their centre. */
function leftToRight(objects: readonly SceneObject[]): SceneObject[] {
  return objects.slice().sort((a, b) => a.x - b.x);
}

/** Where an object is in the image, from the grid cell it sits in: "in the top left corner". */
export function positionPhrase(object: SceneObject): string {
  const { column, row } = gridCell(object);
  const horizontal = ["left", "center", "right"][column];
  const vertical = ["top", "middle", "bottom"][row];
  if (row !== 1 && column !== 1) return `in the ${vertical} ${horizontal} corner`;
  if (row === 1 && column !== 1) return `on the ${horizontal} side`;
  if (column === 1 && row !== 1) return `at the ${vertical}`;
  return "in the center";
}

/**
 * "a small red circle to the left of a blue square": a true relation between two
 * objects that the phrases single out (the size is said when only it tells two apart).
 */
function relationClause(scene: Scene, rng: Random): { a: string; relation: string; b: string } | null {
  const candidates = scene.objects.filter((o) => !hasTwin(scene, o));
  const pairs: Array<[SceneObject, SceneObject]> = [];
  for (const a of candidates) {
    for (const b of candidates) if (a !== b && relationsBetween(a, b).length > 0) pairs.push([a, b]);
  }
  if (pairs.length === 0) return null;
  const [a, b] = rng.choice(pairs);
  const relation = rng.choice(relationsBetween(a, b));
  return {
    a: nounPhrase(a, hasSibling(scene, a) || coin(rng)),
    relation: RELATION_PHRASES[relation],
    b: nounPhrase(b, hasSibling(scene, b) || coin(rng)),
  };
}

/** The templates: each is one paraphrase style. The relation template is listed twice, as annotators favour it. */
const TEMPLATES: Template[] = [
  // "a blue square and a red circle on a green background"
  (scene, rng) => `${listPhrase(objectPhrases(scene, rng))} on ${backgroundPhrase(scene)}`,
  // "a picture of a red circle", "an image with two red circles"
  (scene, rng) => `${rng.choice(["a picture of", "an image of", "an image with", "a drawing of"])} ${listPhrase(objectPhrases(scene, rng))}`,
  // "there is a large yellow star and a white triangle on a blue background"
  (scene, rng) => {
    const phrases = objectPhrases(scene, rng);
    const verb = /^(two|three) /.test(phrases[0]) ? "there are" : "there is";
    return `${verb} ${listPhrase(phrases)} on ${backgroundPhrase(scene)}`;
  },
  // "two shapes on a green background: a red circle and a blue square"
  (scene, rng) => {
    const n = scene.objects.length;
    const generic = n === 1 ? rng.choice(["a single shape", "a single object"]) : `${COUNT_WORDS[n]} ${rng.choice(["shapes", "objects"])}`;
    return `${generic} on ${backgroundPhrase(scene)}: ${listPhrase(objectPhrases(scene, rng))}`;
  },
  // "a green background with a red circle and a blue square"
  (scene, rng) => `${backgroundPhrase(scene)} with ${listPhrase(objectPhrases(scene, rng))}`,
  // "a red circle in the top left corner and a blue square in the center"
  (scene, rng) => {
    const parts = leftToRight(scene.objects).map((o) => `${nounPhrase(o, coin(rng))} ${positionPhrase(o)}`);
    return listPhrase(parts);
  },
  relationTemplate,
  relationTemplate,
];

/** "a red circle above a blue square", "there is ...", "... is above ...", "... on a green background". */
function relationTemplate(scene: Scene, rng: Random): string | null {
  const clause = relationClause(scene, rng);
  if (!clause) return null;
  const { a, relation, b } = clause;
  switch (rng.int(4)) {
    case 0:
      return `${a} ${relation} ${b}`;
    case 1:
      return `there is ${a} ${relation} ${b}`;
    case 2:
      return `${a} is ${relation} ${b}`;
    default:
      return `${a} ${relation} ${b} on ${backgroundPhrase(scene)}`;
  }
}

/** Number of words (whitespace-separated; "background:" counts as one). */
export function wordCount(caption: string): number {
  return caption.split(" ").length;
}

/**
 * Five (or `count`) different captions for a scene. Templates are tried in a shuffled
 * order, so the five captions of an image tend to use five different styles.
 */
export function describeScene(scene: Scene, rng: Random, count = CAPTIONS_PER_IMAGE): string[] {
  const captions: string[] = [];
  let order: Template[] = [];
  for (let attempt = 0; captions.length < count && attempt < 40 * count; attempt++) {
    if (attempt % TEMPLATES.length === 0) order = rng.shuffle(TEMPLATES.slice());
    const caption = order[attempt % TEMPLATES.length](scene, rng);
    if (caption === null || captions.includes(caption)) continue;
    const words = wordCount(caption);
    if (words >= MIN_CAPTION_WORDS && words <= MAX_CAPTION_WORDS) captions.push(caption);
  }
  if (captions.length < count) {
    throw new Error(`lib/data/synthetic/describe.ts: found only ${captions.length} of ${count} distinct captions for scene ${scene.imageId}`);
  }
  return captions;
}
