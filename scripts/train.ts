/**
 * `npm run train`: the same training as notebooks/2_Training.ipynb, for long runs, with a progress
 * bar, the JSON-lines log and a checkpoint per epoch in the run folder. USAGE says how to call it.
 */
import { parseArgs } from "node:util";
import { SingleBar } from "cli-progress";
import { parseConfigFields, presetFor, PRESETS, SELF_CRITICAL_DEFAULTS, type DatasetName, type TrainConfig } from "../lib/train/config";
import { BACKBONES } from "../lib/model/backbone";
import { BACKBONE_FLAGS, backboneFromFlags } from "./backbone-args";
import { formatSeconds } from "../lib/runtime/format";
import { readJson } from "../lib/io/json-file";
import { describeResumeRules, readResumePoint, resumedConfig } from "../lib/train/resume-config";
import { train } from "../lib/train/loop";
import type { StepProgress } from "../lib/train/progress";
import { danglingEndsFlag } from "./dangling-ends-arg";

const USAGE = `npm run train -- [--data synthetic|coco|flickr8k] [--data-root DIR] [--feature-dir DIR] [--config FILE]
                 [--epochs N] [--batch-size N] [--lr X] [--lr-decay FACTOR@EPOCHS] [--steps-per-epoch N]
                 [--images N] [--run-dir DIR] [--max-steps N] [--backbone NAME|DIR|URL [backbone flags]]
                 [--self-critical EPOCHS|none] [--scst-samples K] [--scst-baseline greedy|mean] [--scst-lr X] [--scst-images N]
                 [--scst-dangling-ends allow|forbid] [--workers auto|W]
npm run train -- --resume RUN_DIR [--epochs N] [--max-steps N] [other settings the run may change]

A new run takes the preset of --data (lib/train/config.ts: the defaults of the settings table,
lib/train/settings.ts, and the preset's differences from them), then the settings in --config FILE (a JSON
object of TrainConfig settings, e.g. another run's config.json), then the flags. It refuses a run
folder that already holds checkpoints. --max-steps N stops (with a checkpoint) after N steps in all.
Ctrl-C or SIGTERM checkpoints the current step and exits.

--resume RUN_DIR (or a checkpoint folder in it) continues that run with the settings it was started
with, whatever the preset, and ends as if it had never stopped. A setting given with it (a flag or
--config) is an override, checked against this table (each setting's resume rule in lib/train/settings.ts); a
refused one fails without touching the run. A value equal to the run's own is no change.

--self-critical EPOCHS adds (or resizes) a self-critical phase after the cross-entropy epochs
(lib/train/self-critical.ts): per step, --scst-images images, --scst-samples captions sampled from
each, rewarded by CIDEr-D against the baseline --scst-baseline (greedy: the greedy caption's
reward; mean: the mean of the image's other samples), Adam at --scst-lr; --scst-dangling-ends
forbid masks <end> after "a", "the", "in"... while sampling and validating. Settings not given are
the preset's, or SELF_CRITICAL_DEFAULTS (lib/train/config.ts). "none" removes the phase.

--backbone takes a preset (${Object.keys(BACKBONES).join(", ")}, with --backbone-source DIR for a local copy) or a tfjs
model folder; --backbone-name, --backbone-format, --feature-layer, --input-size, --resize and
--normalization describe any other model (scripts/backbone-args.ts).`;

const OPTIONS = {
  data: { type: "string" },
  config: { type: "string" },
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
  "self-critical": { type: "string" },
  "scst-samples": { type: "string" },
  "scst-baseline": { type: "string" },
  "scst-lr": { type: "string" },
  "scst-images": { type: "string" },
  "scst-dangling-ends": { type: "string" },
  workers: { type: "string" },
  ...BACKBONE_FLAGS,
  help: { type: "boolean" },
} as const;

/** The text of each flag given (--help aside). */
type Flags = Partial<Record<Exclude<keyof typeof OPTIONS, "help">, string>>;

interface TrainArgs {
  config: TrainConfig;
  resume?: string;
  maxSteps?: number;
}

function argsOf(argv: string[]): TrainArgs | "help" {
  const { values } = parseArgs({ args: argv, options: OPTIONS });
  if (values.help) return "help";
  const maxSteps = positiveInteger("max-steps", values["max-steps"]);
  const file = values.config ? parseConfigFields(readJson(values.config), values.config) : {};
  if (values.resume) {
    // The run's own settings; the file and the flags are overrides that RESUME_RULES checks.
    const point = readResumePoint(values.resume);
    const overrides = { ...file, ...flagSettings(values, { ...point.config, ...file }) };
    return { config: resumedConfig(point, overrides).config, resume: point.checkpoint, maxSteps };
  }
  const dataset = datasetOf(values.data) ?? file.dataset ?? "synthetic";
  const preset = { ...PRESETS[dataset], ...file };
  return { config: { ...preset, ...flagSettings(values, preset) }, maxSteps };
}

/** The settings that the flags given set (a flag not given sets nothing). */
function flagSettings(values: Flags, base: TrainConfig): Partial<TrainConfig> {
  const settings: Partial<TrainConfig> = {
    dataset: datasetOf(values.data),
    epochs: positiveInteger("epochs", values.epochs),
    batchSize: positiveInteger("batch-size", values["batch-size"]),
    stepsPerEpoch: positiveInteger("steps-per-epoch", values["steps-per-epoch"]),
    syntheticImages: positiveInteger("images", values.images),
    learningRate: positiveNumber("lr", values.lr),
    lrDecay: values["lr-decay"] === undefined ? undefined : parseDecay(values["lr-decay"]),
    runDir: values["run-dir"],
    dataRoot: values["data-root"],
    featureDir: values["feature-dir"],
    encoder: backboneEncoder(values, base),
    selfCritical: selfCriticalFlags(values, base),
    workers: values.workers === undefined || values.workers === "auto" ? values.workers : positiveInteger("workers", values.workers),
  };
  return Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
}

function datasetOf(value: string | undefined): DatasetName | undefined {
  return value === undefined ? undefined : presetFor(value, "--data").dataset;
}

function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got ${value}`);
  return n;
}

function positiveNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`--${flag} must be a number > 0, got ${value}`);
  return x;
}

/** The encoder the backbone flags describe (undefined when none is given). */
function backboneEncoder(values: Flags, base: TrainConfig): TrainConfig["encoder"] | undefined {
  const backbone = backboneFromFlags(values, base.encoder.kind === "pretrained" ? base.encoder.backbone : undefined);
  if (!backbone) return undefined;
  if (base.encoder.kind !== "pretrained") throw new Error("--backbone: this run's encoder is a small CNN trained from scratch, not a pretrained backbone");
  return { kind: "pretrained", backbone };
}

/** The self-critical phase the flags describe (undefined when none of them is given). */
function selfCriticalFlags(values: Flags, base: TrainConfig): TrainConfig["selfCritical"] | undefined {
  const flags = [values["self-critical"], values["scst-samples"], values["scst-baseline"], values["scst-lr"], values["scst-images"], values["scst-dangling-ends"]];
  if (flags.every((v) => v === undefined)) return undefined;
  if (values["self-critical"] === "none") return null;
  const baseline = values["scst-baseline"];
  if (baseline !== undefined && baseline !== "greedy" && baseline !== "mean") throw new Error(`--scst-baseline must be greedy or mean, got ${baseline}`);
  const settings = {
    ...(base.selfCritical ?? SELF_CRITICAL_DEFAULTS),
    ...Object.fromEntries(
      Object.entries({
        epochs: countOrZero("self-critical", values["self-critical"]),
        samplesPerImage: positiveInteger("scst-samples", values["scst-samples"]),
        baseline,
        learningRate: positiveNumber("scst-lr", values["scst-lr"]),
        imagesPerBatch: positiveInteger("scst-images", values["scst-images"]),
        noDanglingEnd: danglingEndsFlag("scst-dangling-ends", values["scst-dangling-ends"]),
      }).filter(([, v]) => v !== undefined),
    ),
  };
  if (settings.baseline === "mean" && settings.samplesPerImage < 2) throw new Error(`--scst-samples must be at least 2 with the mean baseline`);
  return settings;
}

function countOrZero(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag} must be an integer ≥ 0 or none, got ${value}`);
  return n;
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

function usage(): string {
  return `${USAGE}\n\n${describeResumeRules().map((line) => `  ${line}`).join("\n")}\n`;
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
  const args = argsOf(process.argv.slice(2));
  if (args === "help") {
    process.stdout.write(usage());
    return;
  }
  const { config, resume, maxSteps } = args;
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
