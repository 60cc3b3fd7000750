/**
 * How the benchmarks time things: wall and CPU time of one call, the median of several, and
 * entries run in turn (interleaved) so that all of them see the same machine load.
 */

/** Untimed rounds before the timed ones. */
export const WARMUP = 2;

/** Wall and CPU milliseconds of one call. */
export interface Timing {
  ms: number;
  cpuMs: number;
}

export function timeOnce(f: () => void): Timing {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Something to time: `run` is timed; `prepare`, if given, runs untimed before each call. */
export interface Timed {
  run: () => void;
  prepare?: () => void;
}

/** Runs the entries in turn, `warmup + repeats` rounds, and returns each one's median timing. */
export function interleaved(entries: Timed[], repeats: number): Timing[] {
  const runs: Timing[][] = entries.map(() => []);
  for (let round = 0; round < WARMUP + repeats; round++) {
    entries.forEach(({ run, prepare }, i) => {
      prepare?.();
      const t = timeOnce(run);
      if (round >= WARMUP) runs[i].push(t);
    });
  }
  return runs.map((ts) => ({ ms: median(ts.map((t) => t.ms)), cpuMs: median(ts.map((t) => t.cpuMs)) }));
}

/**
 * `interleaved` for calls that may return a promise (a step on worker threads): each call is
 * awaited before the next starts; its CPU time is the process's, all threads together.
 */
export async function interleavedAsync(entries: (() => unknown)[], repeats: number): Promise<Timing[]> {
  const runs: Timing[][] = entries.map(() => []);
  for (let round = 0; round < WARMUP + repeats; round++) {
    for (const [i, run] of entries.entries()) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await run();
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (round >= WARMUP) runs[i].push({ ms, cpuMs: (cpu.user + cpu.system) / 1000 });
    }
  }
  return runs.map((ts) => ({ ms: median(ts.map((t) => t.ms)), cpuMs: median(ts.map((t) => t.cpuMs)) }));
}

/** x rounded to `digits` decimals: how every figure is printed. */
export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
