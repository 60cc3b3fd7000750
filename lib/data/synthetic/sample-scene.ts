/**
 * Random scenes: a background colour and one to three objects that never overlap.
 *
 * Objects sit in distinct cells of a GRID x GRID grid, each shifted a little from its
 * cell's centre but never out of the cell, so no two objects overlap and every object
 * stays inside the image. The grid also keeps relations unambiguous (relations.ts).
 */
import type { Random } from "../random";
import { COLORS, OBJECT_RADIUS, SHAPES, SIZES, type Color, type Scene, type SceneObject } from "./scene";

/** Cells per side of the placement grid. */
export const GRID = 3;
/**
 * The most an object's centre moves from its cell's centre, as a fraction of the image side.
 * Below (1/3 - RELATION_MIN_GAP) / 2, so objects in neighbouring columns (rows) stay more
 * than RELATION_MIN_GAP apart, and objects in one column (row) less.
 */
export const MAX_JITTER = 0.05;
/** The chance that an object copies the colour and shape of an earlier one, so captions can count ("two red circles"). */
export const DUPLICATE_CHANCE = 0.2;
/** How many objects a scene may hold. */
export const MAX_OBJECTS = 3;

/** Round to 3 decimals: positions are stored in JSON, and the renderer draws what is stored. */
const round3 = (v: number) => Math.round(v * 1000) / 1000;

/** Draw one scene. All randomness comes from `rng`, so a seeded stream gives the same scene. */
export function sampleScene(rng: Random, imageId: number): Scene {
  const background = rng.choice(COLORS);
  const objectColors = COLORS.filter((c) => c !== background);
  const count = 1 + rng.int(MAX_OBJECTS);
  const cells = rng.shuffle([...Array(GRID * GRID).keys()]).slice(0, count);
  const objects: SceneObject[] = [];
  for (const cell of cells) {
    const size = rng.choice(SIZES);
    const { x, y } = placeInCell(rng, cell, OBJECT_RADIUS[size]);
    const copied = objects.length > 0 && rng.next() < DUPLICATE_CHANCE ? rng.choice(objects) : undefined;
    const color: Color = copied ? copied.color : rng.choice(objectColors);
    const shape = copied ? copied.shape : rng.choice(SHAPES);
    objects.push({ shape, color, size, x, y });
  }
  return { imageId, background, objects };
}

/** The grid cell that holds a centre at (x, y), fractions of the image side: column 0 is the left, row 0 the top. */
export function gridCell({ x, y }: { x: number; y: number }): { column: number; row: number } {
  return { column: Math.min(GRID - 1, Math.floor(x * GRID)), row: Math.min(GRID - 1, Math.floor(y * GRID)) };
}

/** A centre inside grid cell `cell` (row-major) such that an object of half-width `radius` stays in the cell. */
function placeInCell(rng: Random, cell: number, radius: number): { x: number; y: number } {
  const half = 1 / (2 * GRID);
  // 0.005 of slack absorbs the rounding to 3 decimals.
  const jitter = Math.min(MAX_JITTER, half - radius - 0.005);
  const column = cell % GRID;
  const row = Math.floor(cell / GRID);
  const shift = () => (2 * rng.next() - 1) * jitter; // uniform in [-jitter, jitter)
  return { x: round3((2 * column + 1) * half + shift()), y: round3((2 * row + 1) * half + shift()) };
}
