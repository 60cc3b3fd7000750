/**
 * The embedded synthetic dataset: random scenes of shapes, drawn with sharp and
 * described by five captions each, written in the MS COCO captions format.
 */
export * from "./scene";
export * from "./relations";
export { createRng, deriveSeed, type Rng } from "./prng";
export { sampleScene } from "./sample-scene";
export { renderScene, sceneToSvg, COLOR_HEX, type RenderOptions } from "./render";
export { describeScene, positionPhrase, CAPTIONS_PER_IMAGE, MIN_WORDS, MAX_WORDS } from "./describe";
export * from "./coco-format";
export * from "./generate";
export * from "./ensure";
