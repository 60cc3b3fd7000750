/**
 * npm run train -- [--data synthetic|coco|flickr8k] [--data-root DIR] [--epochs N] [--batch-size N] [--lr X] [--lr-decay F@E]
 *                  [--steps-per-epoch N] [--max-steps N] [--images N] [--run-dir DIR] [--resume DIR]
 *                  [--backbone NAME|DIR|URL ...] (the backbone flags: scripts/backbone-args.ts)
 *
 * The same training as notebooks/2_Training.ipynb, for long runs: a progress bar, the JSON-lines
 * log and a checkpoint per epoch in the run folder. Ctrl-C (or SIGTERM) checkpoints the current
 * step and exits; `--resume RUN_DIR` continues from there.
 */
import { parseArgs } from "node:util";
import { SingleBar } from "cli-progress";
import { PRESETS, type DatasetName, type TrainConfig } from "../lib/config";
import { BACKBONE_FLAGS, backboneFromFlags } from "./backbone-args";
import { formatSeconds } from "../lib/format";
import { train, type StepProgress } from "../lib/train";

function configFromArgs(argv: string[]): { config: TrainConfig; resume?: string; maxSteps?: number } {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: "string", default: "synthetic" },
      epochs: { type: "string" },
      "batch-size": { type: "string" },
      lr: { type: "string" },
      "steps-per-epoch": { type: "string" },
      "max-steps": { type: "string" },
      images: { type: "string" },
      "run-dir": { type: "string" },
      resume: { type: "string" },
      "lr-decay": { type: "string" },
      "data-root": { type: "string" },
      "feature-dir": { type: "string" },
      ...BACKBONE_FLAGS,
    },
  });
  if (!(values.data in PRESETS)) throw new Error(`--data must be one of ${Object.keys(PRESETS).join(", ")}, got ${values.data}`);
  const config: TrainConfig = { ...PRESETS[values.data as DatasetName] };
  if (values["data-root"]) config.dataRoot = values["data-root"];
  if (values["feature-dir"]) config.featureDir = values["feature-dir"];
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  config.epochs = int("epochs", values.epochs) ?? config.epochs;
  config.batchSize = int("batch-size", values["batch-size"]) ?? config.batchSize;
  config.stepsPerEpoch = int("steps-per-epoch", values["steps-per-epoch"]) ?? config.stepsPerEpoch;
  config.syntheticImages = int("images", values.images) ?? config.syntheticImages;
  if (values.lr !== undefined) config.learningRate = Number(values.lr);
  if (values["lr-decay"] !== undefined) config.lrDecay = parseDecay(values["lr-decay"]);
  if (values["run-dir"]) config.runDir = values["run-dir"];
  else if (values.resume) config.runDir = values.resume;
  const backbone = backboneFromFlags(values, config.encoder.kind === "pretrained" ? config.encoder.backbone : undefined);
  if (backbone && config.encoder.kind !== "pretrained") throw new Error(`--backbone: the ${config.dataset} preset trains its own small CNN`);
  if (backbone) config.encoder = { kind: "pretrained", backbone };
  return { config, resume: values.resume, maxSteps: int("max-steps", values["max-steps"]) };
}

/** `--lr-decay 0.5@2`: multiply the learning rate by 0.5 every 2 epochs; `none` keeps it constant. */
function parseDecay(text: string): TrainConfig["lrDecay"] {
  if (text === "none") return null;
  const match = text.match(/^([0-9.]+)@(\d+)$/);
  const factor = Number(match?.[1]);
  const every = Number(match?.[2]);
  if (!match || !(factor > 0 && factor <= 1) || every < 1) throw new Error(`--lr-decay must be FACTOR@EPOCHS (e.g. 0.5@2) or none, got ${text}`);
  return { factor, every };
}

/** A progress bar on a terminal; a line every `printEvery` steps otherwise (logs, CI). */
function progressDisplay(config: TrainConfig) {
  if (!process.stdout.isTTY) return { onStep: undefined, stop: () => {} };
  const bar = new SingleBar({
    format: "epoch {epoch}/{epochs} [{bar}] {value}/{total} | loss {loss} | ppl {ppl} | {tps} tok/s | ETA {eta}",
    hideCursor: true,
  });
  let started = false;
  return {
    onStep(p: StepProgress) {
      const payload = {
        epoch: p.epoch,
        epochs: p.epochs,
        loss: p.loss.toFixed(3),
        ppl: p.perplexity.toFixed(2),
        tps: Math.round(p.tokensPerSecond),
        eta: formatSeconds(p.etaSeconds),
      };
      if (!started) bar.start(p.totalSteps, p.step, payload);
      started = true;
      bar.update(p.step, payload);
    },
    stop: () => bar.stop(),
    printEvery: config.printEvery,
  };
}

async function main(): Promise<void> {
  const { config, resume, maxSteps } = configFromArgs(process.argv.slice(2));
  const abort = new AbortController();
  const stop = (signal: string) => {
    if (abort.signal.aborted) process.exit(130); // a second Ctrl-C: leave at once
    console.error(`\n${signal}: finishing the current step (or stopping the validation) and writing a checkpoint (Ctrl-C again to quit now)`);
    abort.abort();
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));

  const display = progressDisplay(config);
  const result = await train(config, {
    resume,
    maxSteps,
    signal: abort.signal,
    onStep: display.onStep,
    log: (line) => (display.onStep ? process.stderr.write(`\n${line}\n`) : console.log(line)),
  });
  display.stop();
  console.log(`${result.interrupted ? "stopped" : "done"} after ${result.state.step} steps; checkpoint: ${result.checkpoint}`);
}

main().catch((error: Error) => {
  console.error(`train: ${error.message}`);
  process.exit(1);
});
