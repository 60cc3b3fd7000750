/**
 * The training loop, as the notebooks and `npm run train` run it. `train` reads top to bottom, as
 * nanoGPT's train.py does; what it calls lives in modules named for what they hold:
 *
 *   set up:  the run folder, new or resumed (run-folder.ts); the data and the model
 *            (training-data.ts); Adam; where the loop starts
 *   for each epoch, the cross-entropy ones, then any self-critical ones (`config.selfCritical`):
 *     for each step: a batch → the phase's step (steps.ts) → its record in the log and its
 *                    progress on show (progress.ts), at the step size of the epoch (schedule.ts)
 *     validate (validate.ts), log the epoch, checkpoint: weights, Adam state, data-loader position
 *     and RNG, so that a resumed run continues exactly as if it had never stopped
 *
 * An abort signal (Ctrl-C in the command line) ends training after the current step, or in the
 * middle of an epoch's validation, with a checkpoint of the last step done; a resumed run then
 * starts by validating that epoch again. A run killed outright resumes from its last checkpoint.
 *
 * With `workers` W > 1 the feature extraction's CNN (lib/features/feature-workers.ts) and the
 * steps of both phases (data-parallel.ts) run on W threads; a worker that dies stops the run
 * with a message naming it and a checkpoint of the last step done.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, type BackendInfo } from "../runtime/backend";
import { Captioner } from "../inference/captioner";
import { writeJsonAtomically } from "../io/json-file";
import type { SplitEvaluation } from "../evaluation/evaluate-split";
import type { CiderReward } from "./cider-reward";
import { learningRateAt, phaseOf, totalEpochs, type TrainConfig } from "./config";
import { epochLine, StepReport, type StepProgress } from "./progress";
import type { TrainState } from "./resume-config";
import { epochLabel, makeRunFolder, openRun, recordBest, startingState, stepLabel, writeCheckpoint } from "./run-folder";
import { epochLengths, setLearningRate } from "./schedule";
import { crossEntropyStep, scstStep, selfCriticalImages, selfCriticalReward, stepRecord, type Run } from "./steps";
import { appendRecord, truncateLog, type EpochRecord } from "./train-log";
import { captionLoader, imageSources, loadData, newModel, wordsByImage } from "./training-data";
import { epochRecord, validateEpoch } from "./validate";
import { DataParallel, resolveWorkers } from "./data-parallel";
import { coreCount, WorkerDiedError } from "../runtime/worker-pool";

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

export async function train(requested: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const say = hooks.log ?? (() => {});
  const { config, resume } = openRun(requested, hooks.resume, say);
  const backend = await initBackend({ log: say });
  const files = makeRunFolder(config.runDir);
  const { trainSplit, valSplit } = await loadData(config, say);
  const model = resume ? await Captioner.load(resume.checkpoint, config) : await newModel(config, trainSplit);
  say(`vocabulary: ${model.vocab.size} words (threshold ${config.vocabThreshold}); ${model.variables.length} weight tensors`);
  writeJsonAtomically(files.config, config); // the settings this run really uses, overrides included
  const workers = resolveWorkers(config.workers, backend.kind);
  say(workersLine(workers, config.workers, backend.kind));
  const { trainData, valData } = await imageSources(config, model, trainSplit, valSplit, workers);
  const loader = captionLoader(config, model, trainSplit, trainData);
  const optimizer = tf.train.adam(config.learningRate);
  const state = await startingState(resume, loader, optimizer, say);
  if (resume && (resume.state.workers ?? 1) !== workers) say(workersChangedLine(resume.state.workers ?? 1, workers));
  state.workers = workers;
  // The log reads as one run: a resumed run drops the steps it will do again; a new one drops
  // the records of any earlier attempt that died before its first checkpoint.
  truncateLog(files.log, state.step);

  const run: Run = { config, model, optimizer, state };
  let parallel: DataParallel | undefined;
  const words = wordsByImage(model, trainSplit); // the word-presence loss's targets
  let reward: CiderReward | undefined; // the self-critical phase's: built when the phase starts
  const stepsIn = epochLengths(config, loader.batchesPerEpoch, trainSplit.index.images.length);
  const report = new StepReport(config, stepsIn, hooks);
  // The checkpoint written last: at first the one resumed from, so that resuming a finished run
  // trains nothing and writes nothing (its checkpoints stay as they were).
  let checkpoint = resume?.checkpoint ?? "";
  const save = async (label: string) => (checkpoint = await writeCheckpoint(files, label, { ...run, loader }));
  const finish = async (interrupted: boolean): Promise<TrainResult> => {
    // A run that ends where its last checkpoint was written (an epoch's end) is not saved twice;
    // one stopped mid-epoch is saved at its current step.
    if (state.stepInEpoch > 0 || !checkpoint) await save(stepLabel(state.step));
    if (interrupted) say(`stopped at step ${state.step}; resume with the checkpoint ${checkpoint}`);
    return { model, runDir: config.runDir, checkpoint, state: { ...state }, interrupted, backend };
  };

  try {
    if (workers > 1) {
      run.parallel = parallel = await DataParallel.start(workers, model.decoder, backend.kind);
      hooks.onDataParallel?.(parallel);
    }
    while (state.epoch < totalEpochs(config)) {
      const phase = phaseOf(config, state.epoch);
      while (state.stepInEpoch < stepsIn(state.epoch)) {
        if (stopRequested(hooks, state)) return await finish(true);
        setLearningRate(optimizer, learningRateAt(config, state.epoch));
        const position = loader.state(); // where a step that fails leaves the loader
        const step =
          phase === "cross-entropy"
            ? crossEntropyStep(run, await loader.next(), words)
            : scstStep(run, (reward ??= await selfCriticalReward(run, trainSplit)), await selfCriticalImages(run, trainSplit, trainData));
        const done = await step.catch(async (error) => {
          if (!(error instanceof WorkerDiedError)) throw error;
          loader.setState(position); // the failed step changed nothing (data-parallel.ts): checkpoint the last one done
          throw new Error(`${error.message}; training stopped at step ${state.step}, checkpoint ${(await finish(true)).checkpoint} (resume from it)`);
        });
        state.step += 1;
        state.stepInEpoch += 1;
        state.seconds += done.seconds;
        const record = stepRecord(done, state);
        appendRecord(files.log, record);
        await report.show(record, state, done.seconds);
      }
      const validation = await validateEpoch(run, valSplit, valData, files, hooks.signal);
      if (validation === "aborted") return await finish(true); // resumed, the run validates this epoch again
      state.epoch += 1;
      state.stepInEpoch = 0;
      const record = epochRecord(phase, state, validation);
      appendRecord(files.log, record);
      await save(epochLabel(state.epoch));
      recordBest(files, checkpoint, record);
      hooks.onEpoch?.(record, validation.evaluation);
      say(epochLine(record, totalEpochs(config)));
    }
    return await finish(false);
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    await Promise.all([trainData.close(), valData.close(), parallel?.close()]);
    optimizer.dispose();
  }
}

/** What a resume on another number of threads than the run's own changes. */
function workersChangedLine(before: number, workers: number): string {
  const draws = (before === 1) !== (workers === 1) ? ", and the self-critical phase draws its samples otherwise" : "";
  return (
    `resuming on W = ${workers} threads where the run's steps ran on ${before}: the gradients are summed in another order, ` +
    `so the arithmetic (float rounding) changes${draws}; the run is no longer bit-identical to one that kept W = ${before}`
  );
}

/** The line that says how many threads the feature extraction and the steps run on, and why. */
function workersLine(workers: number, setting: TrainConfig["workers"], backend: string): string {
  const why =
    setting !== "auto"
      ? `workers: ${setting} in the settings`
      : backend === "wasm" || backend === "cpu"
        ? `workers "auto": ${coreCount()} cores, one thread each on ${backend}`
        : `workers "auto": ${backend} has its own threads`;
  return workers > 1
    ? `workers: data-parallel on W = ${workers} threads (${why}): the CNN of the feature extraction, the cross-entropy steps and the self-critical ones`
    : `workers: one thread (${why})`;
}

/** Whether to stop before the next step: the abort signal came, or `maxSteps` are done. */
function stopRequested({ signal, maxSteps }: TrainHooks, state: TrainState): boolean {
  return Boolean(signal?.aborted) || (maxSteps !== undefined && state.step >= maxSteps);
}
