/**
 * Assertions that two training runs ended in the same state (the same weights and the same log),
 * and snapshots of a run folder to show that nothing in it changed.
 *
 * How far a resumed run may drift from an uninterrupted one depends on the backend. wasm and cpu
 * run every op in a fixed order, so resuming is bit-exact there (and asserted so). GPU kernels may
 * sum in a varying order (atomic adds, e.g. the embedding gradient), which moves the last bits.
 */
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { BackendKind } from "../../lib/runtime/backend";
import type { TrainConfig } from "../../lib/train/config";
import { train, type TrainHooks } from "../../lib/train/loop";
import { runFiles } from "../../lib/train/run-folder";
import { readLog, type LogRecord } from "../../lib/train/train-log";

/** Trains, reads the final weights and the log, and frees the model (variable names must be unique among live models). */
export async function trainAndRead(config: TrainConfig, hooks: TrainHooks = {}) {
  const result = await train(config, { log: () => {}, ...hooks });
  const weights = new Map(result.model.variables.map((v) => [result.model.savedName(v), Float32Array.from(v.dataSync())]));
  result.model.dispose();
  return { ...result, weights, log: readLog(runFiles(config.runDir).log) };
}

export function sameRunAssertions(backend: BackendKind) {
  const tolerance = backend === "wasm" || backend === "cpu" ? 0 : 1e-6;

  function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
    assert.equal(actual.length, expected.length, `${what}: lengths differ`);
    for (let i = 0; i < expected.length; i++) {
      const [a, e] = [actual[i], expected[i]];
      const ok = tolerance === 0 ? Object.is(a, e) : Math.abs(a - e) <= tolerance * Math.max(1, Math.abs(e));
      assert.ok(ok, `${what}[${i}]: ${a} after resuming, ${e} without stopping`);
    }
  }

  function assertSameWeights(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>): void {
    assert.deepEqual([...actual.keys()], [...expected.keys()]);
    for (const [name, values] of expected) assertClose(actual.get(name)!, values, name);
  }

  /** The same records (steps and epoch ends) with the same losses; timings differ from run to run. */
  function assertSameLog(actual: LogRecord[], expected: LogRecord[]): void {
    const shape = (log: LogRecord[]) => log.map((r) => `${r.kind} ${r.step}`);
    assert.deepEqual(shape(actual), shape(expected));
    const losses = (log: LogRecord[]) => log.map((r) => (r.kind === "step" ? r.loss : r.valLoss));
    assertClose(losses(actual), losses(expected), "log losses");
    if (tolerance === 0) assert.deepEqual(withoutTimings(actual), withoutTimings(expected)); // validation scores too
  }

  return { exact: tolerance === 0, assertClose, assertSameWeights, assertSameLog };
}

export function withoutTimings(log: LogRecord[]) {
  return log.map((r) => (r.kind === "step" ? { ...r, seconds: 0, tokensPerSecond: 0 } : { ...r, seconds: 0 }));
}

/** Every file under `dir` (relative path → size, modification time and a hash of its bytes): equal snapshots mean nothing was written. */
export function folderSnapshot(dir: string): Record<string, string> {
  const snapshot: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const { size, mtimeMs } = fs.statSync(file);
    const hash = createHash("sha256").update(fs.readFileSync(file)).digest("hex");
    snapshot[path.relative(dir, file)] = `${size} bytes, modified ${mtimeMs}, sha256 ${hash}`;
  }
  return snapshot;
}
