/**
 * The PyTorch references: scripts/bench_torch.py (the decoder's training step) and
 * scripts/bench_torch_mobilenet.py (MobileNet V1's forward pass), run by Debian's python3-torch.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";

const PYTHON = "/usr/bin/python3"; // Debian's, with python3-torch (not the python3 on PATH)

/** Whether Debian's python3-torch can be imported. */
export function torchAvailable(): boolean {
  return spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;
}

/**
 * Runs `script` (a file in scripts/) on one thread, as wasm has, and parses the JSON of its last
 * line; a failure is returned as the last line of its error output, not thrown.
 */
export function runTorchScript<T>(script: string, args: string[], timeoutMs: number): { figures: T } | { error: string } {
  // One thread: torch.set_num_threads(1) does not reach OpenBLAS's own thread pool.
  const env = { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1" };
  const run = spawnSync(PYTHON, [path.join(__dirname, "..", script), ...args], { encoding: "utf8", timeout: timeoutMs, env });
  if (run.status !== 0) return { error: (run.stderr || String(run.error)).trim().split("\n").slice(-1)[0] };
  return { figures: JSON.parse(run.stdout.trim().split("\n").slice(-1)[0]) as T };
}
