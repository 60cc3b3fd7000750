/**
 * The training log: one JSON object per line, appended as training goes, read by the Training
 * notebook for its charts. Two kinds of record share the file:
 *   {"kind":"step", step, epoch, loss, perplexity, seconds, tokensPerSecond}
 *   {"kind":"epoch", epoch, step, valLoss, valPerplexity, metrics: {Bleu_4, CIDEr, ...}, seconds}
 */
import * as fs from "node:fs";
import { nanoid } from "nanoid";

export interface StepRecord {
  kind: "step";
  step: number;
  epoch: number;
  loss: number;
  perplexity: number;
  /** Wall-clock seconds since training started (summed over resumed runs). */
  seconds: number;
  tokensPerSecond: number;
}

export interface EpochRecord {
  kind: "epoch";
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
export const epochRecords = (log: LogRecord[]) => log.filter((r): r is EpochRecord => r.kind === "epoch");
