/**
 * Perfect image features: a synthetic scene's ground truth written as a vector, as if a flawless
 * CNN had read the picture. Used to measure how well the decoder alone can do
 * (scripts/decoder-ceiling.ts), not to train the captioner.
 *
 *   for each cell of the GRID x GRID placement grid (row-major):
 *     one-hot colour [8] ⊕ one-hot shape [4] ⊕ one-hot size [2]   (all zero for an empty cell)
 *   ⊕ one-hot background colour [8]
 *
 * The cell says where an object is as precisely as the captions' positions and relations do
 * (describe.ts, relations.ts). The one thing it leaves out is the order in which a caption lists
 * two objects of the same column, which follows their small random shifts in x (captions
 * regenerated to list such objects by cell instead did not raise the decoder's ceiling: 0.75).
 */
import { GRID, gridCell } from "./sample-scene";
import { COLORS, SHAPES, SIZES, type Scene } from "./scene";

const PER_CELL = COLORS.length + SHAPES.length + SIZES.length;

/** Length of a scene's feature vector. */
export const SCENE_FEATURE_DIM = GRID * GRID * PER_CELL + COLORS.length;

/** The scene as [SCENE_FEATURE_DIM] (layout above). */
export function sceneFeatures(scene: Scene): Float32Array {
  const features = new Float32Array(SCENE_FEATURE_DIM);
  for (const object of scene.objects) {
    const { column, row } = gridCell(object);
    const base = (row * GRID + column) * PER_CELL;
    features[base + COLORS.indexOf(object.color)] = 1;
    features[base + COLORS.length + SHAPES.indexOf(object.shape)] = 1;
    features[base + COLORS.length + SHAPES.length + SIZES.indexOf(object.size)] = 1;
  }
  features[GRID * GRID * PER_CELL + COLORS.indexOf(scene.background)] = 1;
  return features;
}
