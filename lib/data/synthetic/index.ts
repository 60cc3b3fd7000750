/**
 * The embedded synthetic dataset: random scenes of shapes, drawn with sharp and
 * described by five captions each, written in the MS COCO captions format.
 *
 * Names are chosen not to clash with lib/data/coco.ts, so lib/index.ts can `export *` both.
 */
export * from "./scene";
export * from "./relations";
export { deriveSeed, imageRandom } from "./streams";
export { gridCell, sampleScene } from "./sample-scene";
export { renderScene, sceneToSvg, COLOR_HEX, type RenderOptions } from "./render";
export { describeScene, positionPhrase, CAPTIONS_PER_IMAGE, MIN_CAPTION_WORDS, MAX_CAPTION_WORDS } from "./describe";
export { syntheticFileName, SYNTHETIC_GENERATOR_VERSION } from "./coco-format";
export * from "./generate";
export * from "./ensure";
