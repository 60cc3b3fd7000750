/**
 * The library behind the notebooks, imported there as `captioner` (see environment.md).
 * One module per concept; this file only gathers them.
 */

// Compute backend, project paths
export * from "./backend";
export * from "./wasm-kernels";
export * from "./paths";
export * from "./format";
export * from "./json-file";

// Data: COCO files, text, images, batches, the synthetic scenes
export * from "./coco";
export * from "./dataset";
export * from "./tokenizer";
export * from "./vocabulary";
export * from "./random";
export * from "./transforms";
export * from "./sampler";
export * from "./loader";
export * from "./synthetic";

// The model
export * from "./config";
export * from "./model/backbone";
export * from "./model/model-cache";
export * from "./model/small-cnn";
export * from "./model/batch-norm";
export * from "./model/encoder";
export * from "./model/lstm";
export * from "./model/decoder";
export * from "./model/loss";
export * from "./model/train-step";
export * from "./model/word-presence";
export * from "./sample";
export * from "./captioner";
export * from "./features";
export * from "./float16";
export * from "./image-source";

// Training and evaluation
export * from "./train";
export * from "./resume-config";
export * from "./train-log";
export * from "./checkpoint";
export * from "./evaluate-model";
export * from "./metrics/evaluate";
export * from "./metrics/scene-score";

// Notebook display
export * from "./display/plotly";
export * from "./display/charts";
export * from "./display/cards";
export * from "./display/table";

// Getting MS COCO
export * from "./coco-download";
