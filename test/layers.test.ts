/**
 * The import rules of lib/ (.dependency-cruiser.cjs): no cycles; each stage folder imports only
 * from the stages before it and from io/ and runtime/; those two import no stage and no root module.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");

interface Report {
  summary: { violations: { rule: { name: string }; from: string; to: string }[]; totalCruised: number };
}

/** dependency-cruiser's JSON report of `cwd`/lib under the project's rules. */
function cruise(cwd = ROOT): Report {
  const cli = path.join(ROOT, "node_modules", ".bin", "depcruise");
  const args = ["lib", "--config", path.join(ROOT, ".dependency-cruiser.cjs"), "--output-type", "json"];
  try {
    return JSON.parse(execFileSync(cli, args, { cwd, encoding: "utf8", maxBuffer: 64 << 20 }));
  } catch (err) {
    // depcruise exits with the number of violations, after printing the report.
    return JSON.parse((err as { stdout: string }).stdout);
  }
}

test("lib/ keeps its import rules: no cycles, stages import only earlier stages and the plumbing", () => {
  const { summary } = cruise();
  assert.ok(summary.totalCruised > 90, `only ${summary.totalCruised} modules cruised: is the config reading lib/?`);
  const broken = summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
  assert.deepEqual(broken, []);
});

test("the rules catch a cycle, an import of a later stage, plumbing importing a stage, and a type import", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "layers-"));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  fs.copyFileSync(path.join(ROOT, "tsconfig.json"), path.join(dir, "tsconfig.json"));
  write("lib/data/a.ts", 'import { b } from "./b";\nexport const a = () => b;\n');
  write("lib/data/b.ts", 'import { a } from "./a";\nexport const b = () => a;\n');
  write("lib/model/m.ts", 'import type { T } from "../train/t";\nexport const m = (t: T) => t;\n');
  write("lib/train/t.ts", "export type T = number;\n");
  write("lib/io/x.ts", 'import { m } from "../model/m";\nexport const x = m;\n');
  try {
    // A cycle is reported once, at the first module of it.
    const found = cruise(dir).summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
    assert.deepEqual(found, [
      "model-imports-earlier-stages: lib/model/m.ts → lib/train/t.ts",
      "no-cycles: lib/data/a.ts → lib/data/b.ts",
      "plumbing-imports-no-stage: lib/io/x.ts → lib/model/m.ts",
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
