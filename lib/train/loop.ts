/**
 * The training loop, as the notebooks and `npm run train` run it.
 *
 *   for each epoch:
 *     for each step: a batch of (image, caption) pairs → forward, masked cross-entropy,
 *                    gradients, clipping, Adam (model/train-step.ts); one line in the log
 *     validate: loss on the val captions, greedy captions of val images, their BLEU/ROUGE-L/
 *               CIDEr (and, on synthetic scenes, precision/recall of the objects named)
 *     checkpoint: weights, Adam state, data-loader position and RNG, so a resumed run
 *                 continues exactly as if it had never stopped
 *   then, if `config.selfCritical` asks for it, the self-critical epochs (lib/train/self-critical.ts):
 *     for each step: a batch of images → K sampled captions each, their CIDEr-D rewards, the
 *                    baseline, the policy-gradient loss, gradients, clipping, Adam
 *     validate and checkpoint as above
 *
 * An abort signal (Ctrl-C in the command line) ends training after the current step, or in the
 * middle of an epoch's validation, with a checkpoint of the last step done.
 *
 * With `workers` W > 1 the cross-entropy steps run on W threads (lib/train/data-parallel.ts); a
 * worker that dies stops the run with a message naming it and a checkpoint of the last step done.
 *
 * A run folder holds one run. Resuming continues it with the settings it was started with
 * (lib/train/resume-config.ts says which of them a resume may change); training from scratch into a
 * folder that already holds checkpoints is refused rather than overwriting them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend, type BackendInfo } from "../runtime/backend";
import { Captioner, concat } from "../inference/captioner";
import { listCheckpoints, recordIfBest, restoreOptimizer } from "../io/checkpoint";
import { formatSeconds } from "../runtime/format";
import { writeJsonAtomically } from "../io/json-file";
import { learningRateAt, phaseOf, totalEpochs, type TrainConfig } from "./config";
import { captionPairs, captionsByImage, loadSplit, type SplitData } from "../data/dataset";
import { captionImages, flatScores, referenceLoss, scoreCaptions, type SplitEvaluation } from "../evaluation/evaluate-split";
import { imageSource, type DataSource } from "../features/image-source";
import { batchTensors, CaptionLoader, scoredTokens, type Batch } from "../data/loader";
import { perplexity } from "../model/loss";
import { readResumePoint, resumedConfig, type ResumePoint, type TrainState } from "./resume-config";
import { trainStep } from "../model/train-step";
import { ensureSyntheticDataset } from "../data/synthetic/ensure";
import { appendRecord, truncateLog, type EpochRecord, type StepRecord } from "./train-log";
import { UNK, Vocabulary } from "../data/vocabulary";
import { wordPresenceTargets } from "../model/word-presence";
import { Random } from "../data/random";
import { CiderReward } from "./cider-reward";
import { selfCriticalStep, type SelfCriticalStats } from "./self-critical";
import { DataParallel, resolveWorkers } from "./data-parallel";
import { coreCount, WorkerDiedError } from "../runtime/worker-pool";

export interface StepProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  epochs: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  loss: number;
  perplexity: number;
  tokensPerSecond: number;
  etaSeconds: number;
}

export interface TrainHooks {
  /**
   * Continue the run that this checkpoint belongs to (a run folder: its latest checkpoint; or one
   * of its checkpoint folders). The run keeps its own settings: a setting of `config` that differs
   * from the checkpoint's is an override, applied or refused as RESUME_RULES says.
   */
  resume?: string;
  /** Called after every step (drive a progress bar or a notebook display with it). */
  onStep?(progress: StepProgress): void;
  /** Called after each epoch's validation. */
  onEpoch?(record: EpochRecord, evaluation: SplitEvaluation | undefined): void;
  /** Receives the lines worth printing: the set-up, every `printEvery` steps, each epoch. */
  log?(line: string): void;
  /** When aborted, training stops after the current step and writes a checkpoint. */
  signal?: AbortSignal;
  /** Stop (with a checkpoint) once this many steps are done in total: for short runs and tests. */
  maxSteps?: number;
  /** For tests: receives the data-parallel step's workers when W > 1 (e.g. to kill one). */
  onDataParallel?(parallel: DataParallel): void;
}

export interface TrainResult {
  model: Captioner;
  backend: BackendInfo;
  runDir: string;
  /** The last checkpoint written. */
  checkpoint: string;
  state: TrainState;
  /** True when stopped by the signal or `maxSteps` before the last epoch ended. */
  interrupted: boolean;
}

/** Files of a run folder. */
export function runFiles(runDir: string) {
  return {
    config: path.join(runDir, "config.json"),
    log: path.join(runDir, "training-log.jsonl"),
    checkpoints: path.join(runDir, "checkpoints"),
    predictions: path.join(runDir, "predictions"),
  };
}

export async function train(requested: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const say = hooks.log ?? (() => {});
  const resume = hooks.resume ? readResumePoint(hooks.resume) : undefined;
  const config = resume ? resumeSettings(resume, requested, say) : requested;
  if (!resume) assertNoRunIn(config.runDir);
  const backend = await initBackend({ log: say });
  const files = runFiles(config.runDir);
  fs.mkdirSync(files.predictions, { recursive: true });

  const { trainSplit, valSplit } = await loadData(config, say);
  const model = resume ? await Captioner.load(resume.checkpoint, config) : await newModel(config, trainSplit);
  say(`vocabulary: ${model.vocab.size} words (threshold ${config.vocabThreshold}); ${model.variables.length} weight tensors`);
  writeJsonAtomically(files.config, config); // the settings this run really uses, overrides included

  const sourceOptions = { featureCache: config.featureCache, cacheDir: config.featureDir };
  const trainData = await imageSource(model, trainSplit.index, "train", { ...sourceOptions, augment: config.augment });
  const valData = await imageSource(model, valSplit.index, "val", { ...sourceOptions, augment: false });
  const loader = new CaptionLoader({
    captions: captionPairs(trainSplit),
    vocab: model.vocab,
    source: trainData.source,
    imageShape: trainData.shape,
    batchSize: config.batchSize,
    seed: config.seed,
    mode: config.batching,
  });
  const optimizer = tf.train.adam(config.learningRate);
  const workers = resolveWorkers(config.workers, backend.kind);
  const state: TrainState = { step: 0, epoch: 0, stepInEpoch: 0, seconds: 0, loader: loader.state() };
  if (resume) {
    Object.assign(state, resume.state);
    loader.setState(state.loader);
    await restoreOptimizer(resume.checkpoint, optimizer);
    say(`resumed from ${resume.checkpoint} at step ${state.step} (epoch ${state.epoch + 1}, step ${state.stepInEpoch} of it)`);
    const before = resume.state.workers ?? 1;
    if (before !== workers) {
      say(
        `resuming on W = ${workers} threads where the run's steps ran on ${before}: the gradients are summed in another order, ` +
          `so the arithmetic (float rounding) changes; the run is no longer bit-identical to one that kept W = ${before}`,
      );
    }
  }
  state.workers = workers;
  say(workersLine(workers, config.workers, backend.kind));
  let parallel: DataParallel | undefined;
  // The log reads as one run: a resumed run drops the steps it will do again; a new one drops
  // the records of any earlier attempt that died before its first checkpoint.
  truncateLog(files.log, state.step);

  const words = wordPresenceTargets(
    captionsByImage(trainSplit),
    (caption) => model.vocab.encode(caption),
    model.vocab.size,
    UNK + 1,
  );
  try {
    if (workers > 1) {
      parallel = await DataParallel.start(workers, model.decoder, backend.kind);
      hooks.onDataParallel?.(parallel);
    }
    const loop = new Loop(config, hooks, model, loader, optimizer, state, files, words, { split: trainSplit, data: trainData }, parallel, resume?.checkpoint);
    return { ...(await loop.run(valSplit, valData)), backend };
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    await Promise.all([trainData.close(), valData.close(), parallel?.close()]);
    optimizer.dispose();
  }
}

/** The line that says how many threads the steps run on, and why. */
function workersLine(workers: number, setting: TrainConfig["workers"], backend: string): string {
  const why =
    setting !== "auto"
      ? `workers: ${setting} in the settings`
      : backend === "wasm" || backend === "cpu"
        ? `workers "auto": ${coreCount()} cores, one thread each on ${backend}`
        : `workers "auto": ${backend} has its own threads`;
  return workers > 1
    ? `steps: data-parallel on W = ${workers} threads (${why}); the self-critical phase, if any, runs on one`
    : `steps: one thread (${why})`;
}

/** The settings of a resumed run: its own, with the overrides that `requested` makes. */
function resumeSettings(resume: ResumePoint, requested: TrainConfig, say: (line: string) => void): TrainConfig {
  const { config, changes } = resumedConfig(resume, requested);
  if (changes.length) say(`resuming with ${changes.join(", ")}`);
  return config;
}

/** Refuses to train from scratch where a run has checkpoints: it would overwrite them and its log. */
function assertNoRunIn(runDir: string): void {
  const checkpoints = listCheckpoints(runFiles(runDir).checkpoints);
  if (checkpoints.length === 0) return;
  throw new Error(
    `${runDir} already holds a run (checkpoints ${checkpoints.join(", ")}): continue it with ` +
      `train(config, { resume: ${JSON.stringify(runDir)} }) or npm run train -- --resume ${runDir}, or train into a new run folder`,
  );
}

async function loadData(config: TrainConfig, say: (line: string) => void) {
  if (config.dataset === "synthetic") {
    const made = await ensureSyntheticDataset(config.dataRoot, { images: config.syntheticImages, seed: config.seed });
    if (made.generated) say(`generated ${config.syntheticImages} synthetic images in ${config.dataRoot}`);
  }
  const [trainSplit, valSplit] = await Promise.all([loadSplit(config.dataRoot, "train"), loadSplit(config.dataRoot, "val")]);
  say(
    `data: ${config.dataRoot}: train ${trainSplit.index.images.length} images / ${trainSplit.index.captions.length} captions, ` +
      `val ${valSplit.index.images.length} images`,
  );
  return { trainSplit, valSplit };
}

async function newModel(config: TrainConfig, trainSplit: SplitData): Promise<Captioner> {
  const vocab = Vocabulary.build(
    trainSplit.index.captions.map((c) => c.caption),
    { threshold: config.vocabThreshold },
  );
  return Captioner.create(config, vocab, config.seed);
}

/** The loop's moving parts, so that each phase reads as one short method. */
class Loop {
  private readonly stepsPerEpoch: number;

  constructor(
    private readonly config: TrainConfig,
    private readonly hooks: TrainHooks,
    private readonly model: Captioner,
    private readonly loader: CaptionLoader,
    private readonly optimizer: tf.Optimizer,
    private readonly state: TrainState,
    private readonly files: ReturnType<typeof runFiles>,
    /** Image id → which vocabulary words its captions use (for the word-presence loss). */
    private readonly words: Map<number, Float32Array>,
    /** The training images, for the self-critical phase (which samples its own captions of them). */
    private readonly trainImages: { split: SplitData; data: DataSource },
    /** The data-parallel step's workers, when W > 1. */
    private readonly parallel: DataParallel | undefined,
    /**
     * The checkpoint written last: the one resumed from, to begin with, so that resuming a finished
     * run trains nothing and writes nothing (its checkpoints stay as they were).
     */
    private lastCheckpoint = "",
  ) {
    this.stepsPerEpoch = config.stepsPerEpoch ?? loader.batchesPerEpoch;
    const images = trainImages.split.index.images.length;
    this.selfCriticalSteps = config.stepsPerEpoch ?? Math.ceil(images / (config.selfCritical?.imagesPerBatch ?? images));
  }

  /** Steps in each self-critical epoch. */
  private readonly selfCriticalSteps: number;
  /** The self-critical reward (the training references' CIDEr-D), built when first needed. */
  private reward?: CiderReward;

  async run(valSplit: SplitData, valData: DataSource): Promise<Omit<TrainResult, "backend">> {
    const { config, state } = this;
    while (state.epoch < totalEpochs(config)) {
      const selfCritical = phaseOf(config, state.epoch) === "self-critical";
      while (state.stepInEpoch < this.stepsIn(state.epoch)) {
        if (this.shouldStop()) return this.finish(true);
        await (selfCritical ? this.selfCriticalStep() : this.step());
      }
      if (!(await this.endEpoch(valSplit, valData))) return this.finish(true);
    }
    return this.finish(false);
  }

  private stepsIn(epoch: number): number {
    return phaseOf(this.config, epoch) === "self-critical" ? this.selfCriticalSteps : this.stepsPerEpoch;
  }

  private shouldStop(): boolean {
    const { signal, maxSteps } = this.hooks;
    return Boolean(signal?.aborted) || (maxSteps !== undefined && this.state.step >= maxSteps);
  }

  private async step(): Promise<void> {
    const { config, state } = this;
    const position = this.loader.state(); // where a step that fails leaves the loader
    const batch = await this.loader.next();
    // Adam reads its step size at every update: setting it here applies the schedule (a pure
    // function of the epoch, so a resumed run follows it exactly). tfjs types it as protected.
    (this.optimizer as unknown as { learningRate: number }).learningRate = learningRateAt(config, state.epoch);
    const started = performance.now();
    let loss: number;
    try {
      loss = await this.trainOn(batch);
    } catch (error) {
      if (!(error instanceof WorkerDiedError)) throw error;
      // The failed step changed nothing (data-parallel.ts): checkpoint the last step done, as on abort.
      this.loader.setState(position);
      await this.finish(true);
      throw new Error(`${error.message}; training stopped at step ${state.step}, checkpoint ${this.lastCheckpoint} (resume from it)`);
    }
    const seconds = (performance.now() - started) / 1000;
    state.step += 1;
    state.stepInEpoch += 1;
    state.seconds += seconds;

    const tokens = scoredTokens(batch);
    await this.logStep({
      kind: "step",
      step: state.step,
      epoch: state.epoch + 1,
      loss,
      perplexity: perplexity(loss),
      seconds: state.seconds,
      tokensPerSecond: tokens / seconds,
    }, seconds);
  }

  /**
   * One self-critical step (lib/train/self-critical.ts) on the next images of this epoch's order:
   * a shuffle of the training images that is a function of the epoch, and samples drawn from a
   * generator seeded by the step, so that a resumed run repeats both exactly.
   */
  private async selfCriticalStep(): Promise<void> {
    const { config, state, model } = this;
    const settings = config.selfCritical!;
    this.reward ??= new CiderReward(captionsByImage(this.trainImages.split));
    // The next imagesPerBatch images of the epoch's order, going round it again when an epoch has
    // more steps than the images fill (a set stepsPerEpoch): a batch is never short or empty.
    const order = this.selfCriticalOrder(state.epoch);
    const first = state.stepInEpoch * settings.imagesPerBatch;
    const imageIds = Array.from({ length: settings.imagesPerBatch }, (_, i) => order[(first + i) % order.length]);
    const { source, shape } = this.trainImages.data;
    // A source draws its random crops (with `augment`, on pixels) from the generator it is given:
    // seeded by the image here, so a resumed run reads the same pixels.
    const pixels = await Promise.all(imageIds.map((id) => source(id, new Random(id))));
    const images = tf.tensor(concat(pixels), [imageIds.length, ...shape]); // [B, ...image shape]
    (this.optimizer as unknown as { learningRate: number }).learningRate = learningRateAt(config, state.epoch);
    const started = performance.now();
    let stats: SelfCriticalStats;
    try {
      stats = selfCriticalStep({
        model,
        batch: { imageIds, images },
        reward: this.reward,
        config: settings,
        rng: new Random(config.seed * 1_000_003 + state.step),
        optimizer: this.optimizer,
        clipNorm: config.clipNorm,
        maxLength: config.maxCaptionLength,
      });
    } finally {
      images.dispose();
    }
    const seconds = (performance.now() - started) / 1000;
    state.step += 1;
    state.stepInEpoch += 1;
    state.seconds += seconds;
    await this.logStep({
      kind: "step",
      phase: "self-critical",
      step: state.step,
      epoch: state.epoch + 1,
      loss: stats.loss,
      perplexity: NaN,
      seconds: state.seconds,
      tokensPerSecond: (imageIds.length * settings.samplesPerImage) / seconds, // captions per second, here
      reward: stats.meanReward,
      baseline: stats.meanBaseline,
      positiveShare: stats.positiveShare,
    }, seconds);
  }

  /** The training images in the order epoch `epoch` of the self-critical phase visits them. */
  private selfCriticalOrder(epoch: number): number[] {
    const ids = this.trainImages.split.index.images.map((image) => image.id);
    return new Random(this.config.seed * 7_919 + epoch).shuffle(ids);
  }

  /** Appends a step's record to the log, and shows it (`stepSeconds`: how long the step took). */
  private async logStep(record: StepRecord, stepSeconds: number): Promise<void> {
    const { config, state } = this;
    appendRecord(this.files.log, record);
    const progress = this.progress(record, stepSeconds);
    // Let the event loop turn after each output: a notebook kernel (tslab's zeromq socket) defers
    // every 513th message to the next turn and throws if another comes before it.
    this.hooks.onStep?.(progress);
    await turnEventLoop();
    if (state.step % config.printEvery === 0) {
      this.hooks.log?.(record.phase === "self-critical" ? selfCriticalLine(progress, record) : progressLine(progress));
      await turnEventLoop();
    }
  }

  /** One optimisation step on a batch (on W threads when W > 1); returns its loss. */
  private async trainOn(batch: Batch): Promise<number> {
    const { config, model, state } = this;
    const { images, tokens, mask } = batchTensors(batch);
    const wordTargets = model.wordHead ? this.wordTargets(batch) : null;
    try {
      const params = {
        decoder: model.decoder,
        embedImages: () => model.embed(images, true),
        encoderVariables: model.encoder.trainableVariables,
        tokens,
        mask,
        optimizer: this.optimizer,
        clipNorm: config.clipNorm,
        // Each step's dropout masks follow from the seed and the step number: resuming repeats them.
        dropoutSeed: config.seed * 1_000_003 + state.step,
        auxiliaryLoss: model.wordHead
          ? { weight: config.wordLoss, variables: model.wordHead.variables, loss: (e: tf.Tensor2D) => model.wordHead!.loss(e, wordTargets!) }
          : undefined,
      };
      return this.parallel ? await this.parallel.step({ ...params, encoderState: model.encoder.stateVariables }) : trainStep(params);
    } finally {
      tf.dispose([images, tokens, mask, ...(wordTargets ? [wordTargets] : [])]);
    }
  }

  /** [rows, vocab]: the words each row's image is described with. */
  private wordTargets(batch: Batch): tf.Tensor2D {
    const vocab = this.model.vocab.size;
    const out = new Float32Array(batch.imageIds.length * vocab);
    batch.imageIds.forEach((id, row) => out.set(this.words.get(id)!, row * vocab));
    return tf.tensor2d(out, [batch.imageIds.length, vocab]);
  }

  /**
   * Validates the epoch just trained, logs it and writes its checkpoint. Returns false, having
   * done none of that, when the abort signal stops the validation: it can take minutes (5,000
   * COCO images), too long to make Ctrl-C wait. The run then checkpoints its last step, with the
   * epoch's steps all done, and a resumed run starts by validating this epoch again.
   */
  private async endEpoch(valSplit: SplitData, valData: DataSource): Promise<boolean> {
    const { config, state } = this;
    const started = performance.now();
    let validation: { valLoss: number; evaluation: SplitEvaluation } | undefined;
    try {
      validation = config.valImages > 0 ? await this.validate(valSplit, valData) : undefined;
    } catch (error) {
      if (this.hooks.signal?.aborted) return false;
      throw error;
    }
    state.epoch += 1;
    state.stepInEpoch = 0;
    const evaluation = validation?.evaluation;
    const valLoss = validation?.valLoss ?? NaN;
    if (evaluation) {
      const file = path.join(this.files.predictions, `val-epoch-${pad(state.epoch)}.json`);
      writeJsonAtomically(file, evaluation.results, 1);
    }
    const record: EpochRecord = {
      kind: "epoch",
      phase: phaseOf(config, state.epoch - 1),
      epoch: state.epoch,
      step: state.step,
      valLoss,
      valPerplexity: perplexity(valLoss),
      metrics: evaluation ? flatScores(evaluation) : {},
      seconds: (performance.now() - started) / 1000,
    };
    appendRecord(this.files.log, record);
    await this.checkpoint(`epoch-${pad(state.epoch)}`);
    // The model to keep is the one that captions the val images best, not the last one.
    if (record.metrics.CIDEr !== undefined) {
      recordIfBest(this.files.checkpoints, { label: path.basename(this.lastCheckpoint), metric: "CIDEr", value: record.metrics.CIDEr });
    }
    this.hooks.onEpoch?.(record, evaluation);
    this.hooks.log?.(epochLine(record, totalEpochs(config)));
    return true;
  }

  /** Loss on the first `valImages` val images' references, and their greedy captions, scored. */
  private async validate(valSplit: SplitData, valData: DataSource): Promise<{ valLoss: number; evaluation: SplitEvaluation }> {
    const { config, model } = this;
    const { signal } = this.hooks;
    const ids = valSplit.index.images.slice(0, config.valImages).map((i) => i.id);
    const valLoss = await referenceLoss(model, valSplit, valData, ids, { signal });
    const noDanglingEnd = config.selfCritical?.noDanglingEnd ?? false; // validate as the model will be decoded
    const captions = await captionImages(model, valData, ids, { maxLength: config.maxCaptionLength, noDanglingEnd, signal });
    return { valLoss, evaluation: scoreCaptions(valSplit, captions) };
  }

  private async finish(interrupted: boolean): Promise<Omit<TrainResult, "backend">> {
    const { state } = this;
    // A run that ends where its last checkpoint was written (an epoch's end) is not saved twice;
    // one stopped mid-epoch is saved at its current step.
    if (state.stepInEpoch > 0 || !this.lastCheckpoint) await this.checkpoint(`step-${pad(state.step, 6)}`);
    if (interrupted) this.hooks.log?.(`stopped at step ${state.step}; resume with the checkpoint ${this.lastCheckpoint}`);
    return { model: this.model, runDir: this.config.runDir, checkpoint: this.lastCheckpoint, state: { ...state }, interrupted };
  }

  private async checkpoint(label: string): Promise<void> {
    this.state.loader = this.loader.state();
    this.lastCheckpoint = await this.model.save(this.files.checkpoints, label, {
      config: this.config,
      state: this.state,
      optimizer: this.optimizer,
      keep: this.config.keepCheckpoints,
    });
  }

  private progress(record: StepRecord, stepSeconds: number): StepProgress {
    const { config, state } = this;
    const left = this.stepsLeft();
    return {
      step: state.step,
      totalSteps: state.step + left,
      epoch: state.epoch + 1,
      epochs: totalEpochs(config),
      stepInEpoch: state.stepInEpoch,
      stepsPerEpoch: this.stepsIn(state.epoch),
      loss: record.loss,
      perplexity: record.perplexity,
      tokensPerSecond: record.tokensPerSecond,
      etaSeconds: left * this.pace(record.phase ?? "cross-entropy", stepSeconds),
    };
  }

  /** Steps still to do: the rest of this epoch and every later one, each as long as its phase's epochs. */
  private stepsLeft(): number {
    const { state } = this;
    let left = this.stepsIn(state.epoch) - state.stepInEpoch;
    for (let epoch = state.epoch + 1; epoch < totalEpochs(this.config); epoch++) left += this.stepsIn(epoch);
    return left;
  }

  /**
   * Records a step's duration and returns the mean seconds per step of the current phase in this
   * process: a self-critical step costs several cross-entropy ones, so the ETA is reckoned at the
   * pace of the phase under way (before the self-critical phase starts, it underestimates it).
   */
  private pace(phase: string, stepSeconds: number): number {
    if (this.phasePace.phase !== phase) this.phasePace = { phase, steps: 0, seconds: 0 };
    this.phasePace.steps += 1;
    this.phasePace.seconds += stepSeconds;
    return this.phasePace.seconds / this.phasePace.steps;
  }
  private phasePace = { phase: "", steps: 0, seconds: 0 };
}

export function progressLine(p: StepProgress): string {
  return (
    `epoch ${p.epoch}/${p.epochs} · step ${p.stepInEpoch}/${p.stepsPerEpoch} · loss ${p.loss.toFixed(3)} · ` +
    `perplexity ${p.perplexity.toFixed(2)} · ${Math.round(p.tokensPerSecond)} tokens/s · ETA ${formatSeconds(p.etaSeconds)}`
  );
}

function selfCriticalLine(p: StepProgress, r: StepRecord): string {
  return (
    `epoch ${p.epoch}/${p.epochs} (self-critical) · step ${p.stepInEpoch}/${p.stepsPerEpoch} · loss ${p.loss.toFixed(4)} · ` +
    `reward ${r.reward!.toFixed(3)} · baseline ${r.baseline!.toFixed(3)} · ${Math.round(100 * r.positiveShare!)}% above it · ETA ${formatSeconds(p.etaSeconds)}`
  );
}

function epochLine(r: EpochRecord, epochs: number): string {
  const metrics = Object.entries(r.metrics)
    .map(([k, v]) => `${k} ${v.toFixed(3)}`)
    .join(" · ");
  return `epoch ${r.epoch}/${epochs} done · val loss ${r.valLoss.toFixed(3)} · val perplexity ${r.valPerplexity.toFixed(2)}${metrics ? ` · ${metrics}` : ""}`;
}

function pad(n: number, width = 3): string {
  return String(n).padStart(width, "0");
}

function turnEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
