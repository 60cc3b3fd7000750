/**
 * The library as the notebooks see it, imported there as `captioner` (see environment.md): the
 * names a learner uses, in the order of the pipeline. Everything else (downloads, weight files,
 * the wasm kernels, the feature cache...) is plumbing, imported by path where it is needed
 * (scripts/, test/).
 */

// Set-up: the notebooks' first cell, the presets, the compute backend
export { setupNotebook, ensureDataset, notebookHeadHtml, trainConfigFor, settingsTableHtml, splitImages } from "./notebook";
export { hasCheckpoint, trainedSteps, loadTrainedModel, NotebookError, type NotebookSetup } from "./notebook";
export { PRESETS, presetFor, SYNTHETIC_CONFIG, FLICKR8K_CONFIG, COCO_CONFIG, SELF_CRITICAL_DEFAULTS } from "./train/config";
export type { TrainConfig, SelfCriticalConfig } from "./train/config";
export { SETTINGS, defaultConfig, type Setting } from "./train/settings";
export type { ModelConfig } from "./model/model-config";
export { initBackend, type BackendInfo } from "./runtime/backend";
export { projectRoot } from "./runtime/paths";

// Data: the captions, their words, the images, the batches
export { loadSplit, captionPairs, captionsByImage, type SplitData } from "./data/dataset";
export { tokenizeForVocabulary } from "./data/tokenizer";
export { Vocabulary, countWords, SPECIAL_WORDS, START, END, UNK } from "./data/vocabulary";
export { transformImage, displayImage, modelInputImage, type TransformConfig, type DisplayImage } from "./data/transforms";
export { imageSource, type DataSource } from "./features/image-source";
export { CaptionLoader, type Batch } from "./data/loader";
export { Random } from "./data/random";
export { ensureSyntheticDataset } from "./data/synthetic/ensure";
export type { Scene } from "./data/synthetic/scene";

// The model: encoder, decoder (its LSTM), the loss, one training step
export { Captioner } from "./inference/captioner";
export { SHIPPED_MODEL, isModelFolder, photoWarning, modelCheckpoint, readModelCard, type ModelCard } from "./inference/model-folder";
export { EncoderCNN } from "./model/encoder";
export { DecoderRNN } from "./model/decoder";
export { lstmCell, lstmRun, type LSTMState } from "./model/lstm";
export { FusedLSTM } from "./model/lstm-fused";
export { textbookCrossEntropy, captionLoss, maskedCrossEntropy, weightedCrossEntropy, logSoftmax, perplexity } from "./model/loss";
export { trainStep, clipByGlobalNorm, globalNorm } from "./model/train-step";

// Training: the loop, its log
export { train, type TrainResult } from "./train/loop";
export { progressLine } from "./train/progress";
export { runFiles } from "./train/run-folder";
export { resumedConfig, readResumePoint, describeResumeRules, RESUME_RULES } from "./train/resume-config";
export { readLog, stepRecords, crossEntropySteps, selfCriticalSteps, epochRecords, type StepRecord, type EpochRecord } from "./train/train-log";
export { CiderReward } from "./train/cider-reward";
export { scoreSamples, policyGradientUpdate, selfCriticalStep, policyGradientLoss, textbookPolicyGradientLoss, sampleTensors, summarize } from "./train/self-critical";
export type { ImageBatch, ScoredSamples, SelfCriticalStats } from "./train/self-critical";
export { formatSeconds } from "./runtime/format";

// Inference and evaluation: greedy and beam search, the metrics, truth to the scene
export { greedyCaptions, type Caption } from "./inference/greedy";
export { beamSearchCaptions } from "./inference/beam-search";
export { sampleCaptions } from "./inference/sampling";
export { evaluateSplit, scoreCaptions, flatScores, type SplitEvaluation } from "./evaluation/evaluate-split";
export { evaluateResults } from "./evaluation/metrics/evaluate";
export { blindCaption, sceneMistakes, scoresByObjectCount, mistakeSummary, sceneText } from "./evaluation/metrics/scene-score";
export { MISTAKE_KINDS, MISTAKE_WORDS, type MistakeKind } from "./evaluation/metrics/scene-score";

// Where the model looked: Grad-CAM maps of each word of a caption, and their pictures
export { captionMaps, gradCamMaps, type CaptionMaps, type WordMap } from "./explain/grad-cam";
export { explainImage, type Explanation } from "./explain/explain-image";
export { wordFigures, wordMapsHtml, type WordFigure } from "./explain/word-maps-html";

// Notebook display: charts, caption cards, tables, the model's diagram
export { plotHtml, type Figure } from "./display/plotly";
export { stepChart, validationChart, metricPanels, vocabularyChart, barChart, smooth } from "./display/charts";
export { cardsHtml, figuresHtml, CARD_IMAGE_BOX, type CaptionCard } from "./display/cards";
export { tableHtml } from "./display/table";
export { architectureSvg } from "./display/diagram";
export { noteHtml } from "./notebook";
