/**
 * The training log: one JSON object per line, appended as training goes, read by the Training
 * notebook for its charts. Two kinds of record share the file:
 *   {"kind":"step", step, epoch, loss, perplexity, seconds, tokensPerSecond}
 *   {"kind":"epoch", epoch, step, valLoss, valPerplexity, metrics: {Bleu_4, CIDEr, ...}, seconds}
 * A self-critical step's record says so ("phase": "self-critical"): its loss is the policy-gradient
 * loss, its perplexity null, and it adds the mean reward, the baseline and the share of samples
 * above it (lib/train/self-critical.ts).
 */
import * as fs from "node:fs";
import { nanoid } from "nanoid";

export interface StepRecord {
  kind: "step";
  /** Absent for a cross-entropy step. */
  phase?: "self-critical";
  step: number;
  epoch: number;
  loss: number;
  perplexity: number;
  /** Wall-clock seconds since training started (summed over resumed runs). */
  seconds: number;
  /** Scored tokens per second; in a self-critical step, sampled captions per second. */
  tokensPerSecond: number;
  /** Self-critical steps: the sampled captions' mean CIDEr-D, the mean baseline, the share of advantages > 0. */
  reward?: number;
  baseline?: number;
  positiveShare?: number;
}

export interface EpochRecord {
  kind: "epoch";
  /** The phase the epoch trained in (absent in logs from before the self-critical phase). */
  phase?: "cross-entropy" | "self-critical";
  epoch: number;
  step: number;
  valLoss: number;
  valPerplexity: number;
  metrics: Record<string, number>;
  seconds: number;
}

export type LogRecord = StepRecord | EpochRecord;

export function appendRecord(file: string, record: LogRecord): void {
  fs.appendFileSync(file, JSON.stringify(record) + "\n");
}

/** Reads a log; a torn last line (the process died mid-write) is ignored. */
export function readLog(file: string): LogRecord[] {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
  const records: LogRecord[] = [];
  lines.forEach((line, i) => {
    try {
      records.push(JSON.parse(line) as LogRecord);
    } catch (e) {
      if (i < lines.length - 1) throw new Error(`${file}: line ${i + 1} is not valid JSON (${(e as Error).message})`);
    }
  });
  return records;
}

/**
 * On resume, drops the records written after the checkpoint (the steps that will be run again),
 * so the log reads as one uninterrupted run.
 */
export function truncateLog(file: string, lastStep: number): void {
  const kept = readLog(file).filter((r) => r.step <= lastStep);
  // Written aside and renamed over the log: a kill in the middle leaves the old log, never half of it.
  const tmp = `${file}.tmp-${nanoid(6)}`;
  fs.writeFileSync(tmp, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  fs.renameSync(tmp, file);
}

export const stepRecords = (log: LogRecord[]) => log.filter((r): r is StepRecord => r.kind === "step");
/** The steps of each phase: cross-entropy (teacher forcing), then self-critical. */
export const crossEntropySteps = (log: LogRecord[]) => stepRecords(log).filter((r) => r.phase !== "self-critical");
export const selfCriticalSteps = (log: LogRecord[]) => stepRecords(log).filter((r) => r.phase === "self-critical");
export const epochRecords = (log: LogRecord[]) => log.filter((r): r is EpochRecord => r.kind === "epoch");
