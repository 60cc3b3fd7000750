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

/**
 * Half the width of an object, as a fraction of the image side: a large object spans
 * 30% of the image (19 pixels when the model reads it at 64x64), a small one 18%.
 * Every shape fits inside the square of this half-width around its centre.
 */
export const OBJECT_RADIUS: Record<Size, number> = { small: 0.09, large: 0.15 };

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
