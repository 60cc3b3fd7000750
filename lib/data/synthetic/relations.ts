/**
 * Spatial relations between two objects of a scene, derived from their positions.
 *
 * A caption only states a relation that is clearly true: along its axis, the two
 * centres must be at least RELATION_MIN_GAP of the image apart. Scenes place objects
 * in the cells of a 3x3 grid (sample-scene.ts), so two objects in different columns
 * are always more than this gap apart horizontally, and two in the same column less.
 */
import type { SceneObject } from "./scene";

export const RELATIONS = ["left", "right", "above", "below"] as const;
export type Relation = (typeof RELATIONS)[number];

/** How each relation is said in a caption: "a red circle <phrase> a blue square". */
export const RELATION_PHRASES: Record<Relation, string> = {
  left: "to the left of",
  right: "to the right of",
  above: "above",
  below: "below",
};

/** The smallest distance between centres, as a fraction of the image side, for a relation to hold. */
export const RELATION_MIN_GAP = 0.2;

/** Whether "a <relation> b" is true. Image y grows downwards, so "above" means a smaller y. */
export function relationHolds(a: SceneObject, b: SceneObject, relation: Relation): boolean {
  switch (relation) {
    case "left":
      return b.x - a.x >= RELATION_MIN_GAP;
    case "right":
      return a.x - b.x >= RELATION_MIN_GAP;
    case "above":
      return b.y - a.y >= RELATION_MIN_GAP;
    case "below":
      return a.y - b.y >= RELATION_MIN_GAP;
  }
}

/** Every relation that holds from a to b (none, one, or one per axis for diagonal neighbours). */
export function relationsBetween(a: SceneObject, b: SceneObject): Relation[] {
  return RELATIONS.filter((relation) => relationHolds(a, b, relation));
}
