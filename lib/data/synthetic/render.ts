/**
 * Drawing a scene: scene → SVG text → JPEG (or PNG) bytes, rendered by sharp (librsvg).
 *
 * The same scene and options always give the same bytes: the SVG text is built with
 * fixed decimals and sharp's encoders are deterministic for a given sharp version.
 */
import sharp from "sharp";
import { OBJECT_RADIUS, type Color, type Scene, type SceneObject } from "./scene";

/** Fill colours: saturated and far apart, so each colour word names one clearly different hue. */
export const COLOR_HEX: Record<Color, string> = {
  red: "#dc1e1e",
  green: "#1ea03c",
  blue: "#1e46dc",
  yellow: "#f5dc1e",
  purple: "#8c28aa",
  orange: "#fa8c14",
  white: "#f5f5f5",
  black: "#141414",
};

export interface RenderOptions {
  /** Width and height in pixels (images are square). Default 96. */
  size?: number;
  /** Default "jpeg", as in COCO. */
  format?: "jpeg" | "png";
  /** JPEG quality, 1..100. Default 90. */
  quality?: number;
}

/** Pixel numbers with two decimals, so the SVG text (and hence the image) is the same on every machine. */
const px = (v: number) => v.toFixed(2);

/** The SVG element of one object; `size` is the image side in pixels. */
function objectToSvg(object: SceneObject, size: number): string {
  const cx = object.x * size;
  const cy = object.y * size;
  const r = OBJECT_RADIUS[object.size] * size;
  const fill = COLOR_HEX[object.color];
  switch (object.shape) {
    case "circle":
      return `<circle cx="${px(cx)}" cy="${px(cy)}" r="${px(r)}" fill="${fill}"/>`;
    case "square": {
      // A square as wide as the circle looks larger; 0.85 evens out their areas a little.
      const h = 0.85 * r;
      return `<rect x="${px(cx - h)}" y="${px(cy - h)}" width="${px(2 * h)}" height="${px(2 * h)}" fill="${fill}"/>`;
    }
    case "triangle":
      return polygon([[cx, cy - r], [cx + r, cy + 0.85 * r], [cx - r, cy + 0.85 * r]], fill);
    case "star":
      return polygon(starPoints(cx, cy, r, 0.45 * r), fill);
  }
}

/** The ten corners of a five-pointed star pointing up, alternating outer and inner radius. */
function starPoints(cx: number, cy: number, outer: number, inner: number): Array<[number, number]> {
  const points: Array<[number, number]> = [];
  for (let i = 0; i < 10; i++) {
    const radius = i % 2 === 0 ? outer : inner;
    const angle = -Math.PI / 2 + (i * Math.PI) / 5;
    points.push([cx + radius * Math.cos(angle), cy + radius * Math.sin(angle)]);
  }
  return points;
}

function polygon(points: Array<[number, number]>, fill: string): string {
  return `<polygon points="${points.map(([x, y]) => `${px(x)},${px(y)}`).join(" ")}" fill="${fill}"/>`;
}

/** The scene as an SVG document of `size` x `size` pixels. */
export function sceneToSvg(scene: Scene, size = 96): string {
  const body = scene.objects.map((o) => objectToSvg(o, size)).join("");
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">` +
    `<rect width="${size}" height="${size}" fill="${COLOR_HEX[scene.background]}"/>${body}</svg>`
  );
}

/** Render a scene to encoded image bytes. */
export async function renderScene(scene: Scene, options: RenderOptions = {}): Promise<Buffer> {
  const { size = 96, format = "jpeg", quality = 90 } = options;
  const image = sharp(Buffer.from(sceneToSvg(scene, size)));
  // librsvg renders RGBA; the background is opaque, so the alpha channel carries nothing.
  if (format === "png") return image.removeAlpha().png().toBuffer();
  // 4:4:4 keeps full colour resolution: with 4:2:0 the edges of small shapes bleed colour.
  return image.jpeg({ quality, chromaSubsampling: "4:4:4" }).toBuffer();
}
