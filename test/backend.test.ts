/**
 * Backend choice (lib/runtime/backend.ts): forcing, the preference order, the one log line,
 * idempotence, and clear errors for a kind that cannot run.
 */
import { afterEach, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { BACKEND_ENV, BACKEND_KINDS, backendAvailability, initBackend } from "../lib/runtime/backend";
import { ADDED_WASM_KERNELS } from "../lib/runtime/wasm-kernels";

/** Collects the lines initBackend logs. */
function recorder(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

// Each test controls CAPTIONER_BACKEND itself; the caller's value must not leak in.
const savedEnv = process.env[BACKEND_ENV];
beforeEach(() => delete process.env[BACKEND_ENV]);
afterEach(() => {
  if (savedEnv == null) delete process.env[BACKEND_ENV];
  else process.env[BACKEND_ENV] = savedEnv;
});

test("forced cpu: runs cpu and logs one line saying it was forced", async () => {
  const { lines, log } = recorder();
  const info = await initBackend({ force: "cpu", log });
  assert.deepEqual(info, { name: "cpu", kind: "cpu", reason: "forced by initBackend({ force })" });
  assert.equal(tf.getBackend(), "cpu");
  assert.deepEqual(lines, ["backend: cpu (pure JavaScript) — forced by initBackend({ force })"]);
});

test("forced wasm: runs wasm, says SIMD and threads, and registers the missing kernels", async () => {
  const { lines, log } = recorder();
  const info = await initBackend({ force: "wasm", log });
  assert.equal(info.kind, "wasm");
  assert.equal(tf.getBackend(), "wasm");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^backend: wasm \((no )?SIMD, \d+ threads?\) — forced by initBackend\(\{ force \}\)$/);
  for (const name of ADDED_WASM_KERNELS) assert.ok(tf.getKernel(name, "wasm"), `${name} not registered`);
});

test("a second call is cheap: same info, no second log line, and it re-activates its backend", async () => {
  const first = await initBackend({ force: "wasm", log: () => {} });
  await tf.setBackend("cpu"); // something switched away in between
  const { lines, log } = recorder();
  const second = await initBackend({ force: "wasm", log });
  assert.equal(second, first, "the same object: no second selection");
  assert.equal(tf.getBackend(), "wasm");
  assert.equal(lines.length, 0, "nothing logged the second time");
});

test("automatic choice takes the first available kind and names why the faster ones were not taken", async () => {
  const { lines, log } = recorder();
  const availability = BACKEND_KINDS.map((kind) => ({ kind, ...backendAvailability(kind) }));
  const first = availability.findIndex((a) => a.available);
  const info = await initBackend({ log });
  assert.equal(info.kind, availability[first].kind);
  assert.equal(tf.getBackend(), info.name);
  const skipped = availability.slice(0, first).map((a) => a.why);
  assert.equal(info.reason, skipped.length > 0 ? skipped.join("; ") : "the fastest kind");
  assert.equal(lines.length, 1);
  assert.ok(lines[0].startsWith(`backend: ${info.name} `), lines[0]);
  assert.ok(lines[0].endsWith(`— ${info.reason}`), lines[0]);
  assert.equal(await initBackend({ log }), info, "idempotent");
  assert.equal(lines.length, 1, "logged once");
});

test("CAPTIONER_BACKEND forces a kind; the option overrides it", async () => {
  process.env[BACKEND_ENV] = "cpu";
  const { lines, log } = recorder();
  const info = await initBackend({ log });
  assert.equal(info.kind, "cpu");
  assert.equal(info.reason, `forced by ${BACKEND_ENV}=cpu`);
  assert.deepEqual(lines, [`backend: cpu (pure JavaScript) — forced by ${BACKEND_ENV}=cpu`]);
  assert.equal((await initBackend({ force: "wasm", log })).kind, "wasm");
});

test("an unknown CAPTIONER_BACKEND is an error naming the variable and the choices", async () => {
  process.env[BACKEND_ENV] = "gpu";
  await assert.rejects(initBackend(), /CAPTIONER_BACKEND is 'gpu'; expected one of node-gpu, node, wasm, cpu/);
});

for (const kind of ["node-gpu", "node"] as const) {
  const { available, why } = backendAvailability(kind);
  test(
    `forcing ${kind} where it cannot load is an error that says why`,
    { skip: available ? `${kind} is available on this machine` : false },
    async () => {
      assert.match(why, new RegExp(`^tfjs-${kind} (not installed|failed to load: .+)$`));
      const before = tf.getBackend();
      await assert.rejects(initBackend({ force: kind }), (err: Error) => {
        assert.equal(err.message, `lib/runtime/backend.ts: backend '${kind}' forced by initBackend({ force }) cannot run: ${why}`);
        return true;
      });
      assert.equal(tf.getBackend(), before, "the active backend is unchanged");
    },
  );
}

test("backendAvailability: cpu and wasm are always there (wasm is a dependency)", () => {
  assert.deepEqual(backendAvailability("cpu"), { available: true, why: "" });
  assert.deepEqual(backendAvailability("wasm"), { available: true, why: "" });
});
