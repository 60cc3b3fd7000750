/**
 * The ground truth of one synthetic image: a background and one to three objects.
 *
 * The vocabulary below is shared by the generator (which draws and describes scenes)
 * and by the scene scorer (which reads a generated caption back into objects), so a
 * caption can be checked against what is really in the picture.
 */

export const SHAPES = ["circle", "square", "triangle", "star"] as const;
export const COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"] as const;
export const SIZES = ["small", "large"] as const;

export type Shape = (typeof SHAPES)[number];
export type Color = (typeof COLORS)[number];
export type Size = (typeof SIZES)[number];

/** Plural forms as they appear in captions ("two red circles"). */
export const SHAPE_PLURALS: Record<Shape, string> = {
  circle: "circles",
  square: "squares",
  triangle: "triangles",
  star: "stars",
};

export interface SceneObject {
  shape: Shape;
  color: Color;
  size: Size;
  /** Centre of the object, as a fraction of the image width and height (0..1). */
  x: number;
  y: number;
}

export interface Scene {
  imageId: number;
  background: Color;
  objects: SceneObject[];
}
