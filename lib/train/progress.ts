/**
 * What the loop shows as it goes: after each step, its progress for `onStep` (a progress bar, a
 * notebook's live line) and, every `printEvery` steps, a line for the log; after each epoch, the
 * epoch's line.
 */
import { formatSeconds } from "../runtime/format";
import { totalEpochs, type TrainConfig } from "./config";
import type { TrainState } from "./resume-config";
import { stepsLeft, type EpochLengths } from "./schedule";
import type { EpochRecord, StepRecord } from "./train-log";

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

/** Where a run's progress goes (the hooks of `train`). */
export interface ProgressHooks {
  onStep?(progress: StepProgress): void;
  log?(line: string): void;
}

/** Shows each step of a run; keeps the pace of the phase under way, for the ETA. */
export class StepReport {
  private pace = { phase: "", steps: 0, seconds: 0 };

  constructor(
    private readonly config: TrainConfig,
    private readonly stepsIn: EpochLengths,
    private readonly hooks: ProgressHooks,
  ) {}

  /** Shows the step just done (its log record, and how long it took), `state` having counted it. */
  async show(record: StepRecord, state: TrainState, stepSeconds: number): Promise<void> {
    const progress = this.progress(record, state, stepSeconds);
    this.hooks.onStep?.(progress);
    await yieldToKernel();
    if (state.step % this.config.printEvery === 0) {
      this.hooks.log?.(record.phase === "self-critical" ? selfCriticalLine(progress, record) : progressLine(progress));
      await yieldToKernel();
    }
  }

  private progress(record: StepRecord, state: TrainState, stepSeconds: number): StepProgress {
    const left = stepsLeft(this.config, this.stepsIn, state);
    return {
      step: state.step,
      totalSteps: state.step + left,
      epoch: state.epoch + 1,
      epochs: totalEpochs(this.config),
      stepInEpoch: state.stepInEpoch,
      stepsPerEpoch: this.stepsIn(state.epoch),
      loss: record.loss,
      perplexity: record.perplexity,
      tokensPerSecond: record.tokensPerSecond,
      etaSeconds: left * this.secondsPerStep(record.phase ?? "cross-entropy", stepSeconds),
    };
  }

  /**
   * Records a step's duration and returns the mean seconds per step of the current phase in this
   * process: a self-critical step costs several cross-entropy ones, so the ETA is reckoned at the
   * pace of the phase under way (before the self-critical phase starts, it underestimates it).
   */
  private secondsPerStep(phase: string, stepSeconds: number): number {
    if (this.pace.phase !== phase) this.pace = { phase, steps: 0, seconds: 0 };
    this.pace.steps += 1;
    this.pace.seconds += stepSeconds;
    return this.pace.seconds / this.pace.steps;
  }
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

export function epochLine(r: EpochRecord, epochs: number): string {
  const metrics = Object.entries(r.metrics)
    .map(([k, v]) => `${k} ${v.toFixed(3)}`)
    .join(" · ");
  return `epoch ${r.epoch}/${epochs} done · val loss ${r.valLoss.toFixed(3)} · val perplexity ${r.valPerplexity.toFixed(2)}${metrics ? ` · ${metrics}` : ""}`;
}

/**
 * Lets the event loop turn once. The loop does so after each output: a notebook kernel (tslab's
 * zeromq socket) defers every 513th message to the next turn, and throws if another comes before it.
 */
function yieldToKernel(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
