/**
 * A map over the model's input, put back over the whole image as the user gave it.
 *
 * The model sees a square: the upright image (EXIF orientation applied) resized so that its
 * shorter side is `resize` pixels, then a centre crop of `crop` pixels (the shipped model and the
 * small CNN resize to the crop size, so a square photo is seen whole, and a landscape or portrait
 * one loses the ends of its longer side). A feature map of [rows, cols] covers that square, each
 * value standing for the centre of its cell, where the backbone's layers put it (MapGeometry:
 * not an even spread). Over the whole image, on a grid of the image's own aspect ratio, each cell
 * takes the map's value at its centre by bilinear interpolation between the map's cell centres;
 * cells outside the square, which the model never saw, are 0.
 */
import type { TransformConfig } from "../data/transforms";
import type { MapGeometry } from "../model/map-geometry";

/** The square the model sees, in the upright image's pixels. */
export interface InputWindow {
  left: number;
  top: number;
  side: number;
}

/** Size of the upright image, in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/** A map over the whole image: `values` [rows, cols] row-major from the top-left. */
export interface ImageMap {
  grid: [number, number];
  values: Float32Array;
}

/** Grid cells over the image per feature-map cell along each side: 7x7 over a square photo becomes 28x28. */
export const CELLS_PER_MAP_CELL = 4;

/** Where the evaluation transform's centre crop lies in an upright image of `size`. */
export function inputWindow(size: ImageSize, transform: Pick<TransformConfig, "resize" | "crop">): InputWindow {
  const scale = transform.resize / Math.min(size.width, size.height);
  // As the transform: the resized sides are rounded, the crop's offset rounded down.
  const left = Math.floor((Math.round(size.width * scale) - transform.crop) / 2);
  const top = Math.floor((Math.round(size.height * scale) - transform.crop) / 2);
  return { left: left / scale, top: top / scale, side: transform.crop / scale };
}

/** Where a feature map lies on the model's square input of `inputSize` pixels. */
export interface MapPlacement {
  inputSize: number;
  geometry: MapGeometry;
}

/** The [rows, cols] of the grid over the whole image for a map of `mapGrid` cells over `window`. */
export function imageGrid(mapGrid: [number, number], size: ImageSize, window: InputWindow): [number, number] {
  const cell = window.side / (Math.max(...mapGrid) * CELLS_PER_MAP_CELL); // in image pixels
  return [Math.max(1, Math.round(size.height / cell)), Math.max(1, Math.round(size.width / cell))];
}

/** A map [rows, cols] over `window` → a map over the whole image, normalised to a maximum of 1 (see the file comment). */
export function mapOverImage(map: Float32Array, [rows, cols]: [number, number], size: ImageSize, window: InputWindow, placement: MapPlacement): ImageMap {
  if (map.length !== rows * cols) throw new Error(`mapOverImage: ${map.length} values are not a ${rows}x${cols} map`);
  const grid = imageGrid([rows, cols], size, window);
  const values = new Float32Array(grid[0] * grid[1]);
  for (let i = 0; i < grid[0]; i++) {
    const y = ((i + 0.5) * size.height) / grid[0];
    for (let j = 0; j < grid[1]; j++) {
      const x = ((j + 0.5) * size.width) / grid[1];
      const u = (x - window.left) / window.side; // [0, 1) inside the window
      const v = (y - window.top) / window.side;
      if (u < 0 || u >= 1 || v < 0 || v >= 1) continue; // not seen by the model
      values[i * grid[1] + j] = bilinear(map, rows, cols, toCell(v, placement), toCell(u, placement));
    }
  }
  const max = values.reduce((m, v) => Math.max(m, v), 0);
  if (max > 0) for (let k = 0; k < values.length; k++) values[k] /= max;
  return { grid, values };
}

/** A position in the model's input (0..1 of its side) → cell-centre coordinates of the map (0 = the first cell's centre). */
function toCell(fraction: number, { inputSize, geometry }: MapPlacement): number {
  return (fraction * inputSize - geometry.offset) / geometry.stride;
}

/**
 * The value of `map` [rows, cols] at (r, c) in cell-centre coordinates (0 = the first cell's
 * centre), interpolated between the four nearest centres; beyond the outer centres, the edge value.
 */
export function bilinear(map: Float32Array, rows: number, cols: number, r: number, c: number): number {
  const rr = Math.min(Math.max(r, 0), rows - 1);
  const cc = Math.min(Math.max(c, 0), cols - 1);
  const r0 = Math.floor(rr);
  const c0 = Math.floor(cc);
  const r1 = Math.min(r0 + 1, rows - 1);
  const c1 = Math.min(c0 + 1, cols - 1);
  const fr = rr - r0;
  const fc = cc - c0;
  const top = map[r0 * cols + c0] * (1 - fc) + map[r0 * cols + c1] * fc;
  const bottom = map[r1 * cols + c0] * (1 - fc) + map[r1 * cols + c1] * fc;
  return top * (1 - fr) + bottom * fr;
}

/** Share of a map's mass in the columns [from, to) of the image's width (fractions 0..1): the dog's half. */
export function massShare(map: ImageMap, from: number, to: number): number {
  const [rows, cols] = map.grid;
  let inside = 0;
  let total = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = map.values[i * cols + j];
      const x = (j + 0.5) / cols;
      total += v;
      if (x >= from && x < to) inside += v;
    }
  }
  return total === 0 ? 0 : inside / total;
}
