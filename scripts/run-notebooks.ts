/**
 * Run the three notebooks headless, through Jupyter itself, into one run folder.
 *
 * For each notebook, in order 1 → 2 → 3:
 *   1. execute it with the tslab kernel (scripts/execute-notebook.py: nbclient, the library behind
 *      `jupyter nbconvert --execute`), the kernel's working directory being notebooks/ as in JupyterLab;
 *   2. sign it (`jupyter trust`), so that its Plotly charts draw when it is reopened in Jupyter;
 *   3. export it to HTML (`jupyter nbconvert --to html`), the page a person opens in a browser.
 * The notebooks find the run folder in CAPTIONER_RUN_DIR: notebook 2 trains into it, notebook 3 loads
 * its checkpoint and writes metrics.json there.
 *
 * Used by `npm start` (scripts/main.ts) and by test/notebooks.test.ts.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readJson } from "../lib/io/json-file";
import { projectRoot } from "../lib/runtime/paths";

export const PROJECT_ROOT = projectRoot();
export const NOTEBOOKS_DIR = path.join(PROJECT_ROOT, "notebooks");
export const NOTEBOOKS = ["1_Preliminaries.ipynb", "2_Training.ipynb", "3_Inference.ipynb"].map((f) => path.join(NOTEBOOKS_DIR, f));

/** Debian's Jupyter (apt packages jupyter-nbconvert, python3-nbclient; see scripts/setup.sh). */
export const PYTHON = "/usr/bin/python3";
export const NBCONVERT = "/usr/bin/jupyter-nbconvert";
const EXECUTE_SCRIPT = path.join(__dirname, "execute-notebook.py");
const NODE_BIN = path.join(PROJECT_ROOT, "node_modules", ".bin");

/** A notebook that did not run to the end: which one, where its partial copy is, and what the failing cell said. */
export class NotebookRunError extends Error {
  constructor(readonly notebook: string, readonly executedPath: string, readonly details: string) {
    super(`notebook ${notebook} failed (the executed copy, up to the failing cell: ${executedPath})\n${details}`);
    this.name = "NotebookRunError";
  }
}

export interface RunOptions {
  /** The notebooks to run, in order (default: the three of notebooks/). */
  notebooks?: string[];
  /** Where the executed notebooks, their HTML exports and everything the notebooks write go. */
  runDir: string;
  /** More environment for the kernel, e.g. { CAPTIONER_QUICK: "1" }. */
  env?: Record<string, string>;
  /** Print each cell as it starts and the text it prints (npm start); off in tests. */
  echo?: boolean;
  /** Seconds one cell may run before it counts as failed. */
  cellTimeout?: number;
  /** Progress lines ("executed 2_Training.ipynb in 312 s"). */
  log?: (line: string) => void;
}

/** What one notebook left in the run folder. */
export interface NotebookRun {
  /** The notebook's file name. */
  notebook: string;
  executed: string;
  html: string;
  seconds: number;
}

/** Says what to install when Debian's Jupyter is missing; call before anything else. */
export function assertJupyter(): void {
  const missing = [PYTHON, NBCONVERT].filter((file) => !fs.existsSync(file));
  const nbclient = missing.length === 0 && spawnSync(PYTHON, ["-c", "import nbclient, nbformat"]).status === 0;
  if (missing.length > 0 || !nbclient) {
    const what = missing.length > 0 ? missing.join(" and ") : "the Python package nbclient";
    throw new Error(
      `run-notebooks: Jupyter is missing (${what} not found). Run \`bash scripts/setup.sh\` (as root: it installs ` +
        "Debian's jupyter-nbconvert, python3-nbclient and jupyter-notebook, and registers the tslab kernel).",
    );
  }
}

/** Registers the tslab kernel with /usr/bin/python3's Jupyter unless it is there. Returns true when it registered it. */
export function ensureKernel(log: (line: string) => void = console.log): boolean {
  const listing = spawnSync(PYTHON, ["-m", "jupyter_client.kernelspecapp", "list", "--json"], { encoding: "utf8" });
  if (listing.status !== 0) throw new Error(`run-notebooks: cannot list Jupyter kernels: ${listing.stderr.trim()}`);
  if ("tslab" in JSON.parse(listing.stdout).kernelspecs) return false;
  // As root the kernel goes to /usr/local/share/jupyter; otherwise to the user's own Jupyter folder.
  const scope = process.getuid?.() === 0 ? [] : ["--user"];
  log(`registering the tslab kernel: tslab install --python=${PYTHON} ${scope.join(" ")}`);
  const install = spawnSync(path.join(NODE_BIN, "tslab"), ["install", `--python=${PYTHON}`, ...scope], { stdio: "inherit" });
  if (install.status !== 0) throw new Error("run-notebooks: `tslab install` failed (is node_modules installed? run `npm ci`)");
  return true;
}

/** The notebooks import the compiled library (lib/dist); compile it when a source is newer. */
export function buildLibIfStale(): void {
  const built = path.join(PROJECT_ROOT, "lib", "dist", "index.js");
  const builtAt = fs.existsSync(built) ? fs.statSync(built).mtimeMs : 0;
  if (newestSource(path.join(PROJECT_ROOT, "lib")) <= builtAt) return;
  console.log("building lib/ (npm run build)");
  const build = spawnSync("npm", ["run", "--silent", "build"], { cwd: PROJECT_ROOT, stdio: "inherit" });
  if (build.status !== 0) throw new Error("run-notebooks: `npm run build` failed (see the compiler's messages above)");
}

/** The latest modification time of a .ts file under `dir`, outside dist/ and node_modules/. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "dist" && entry.name !== "node_modules") newest = Math.max(newest, newestSource(file));
    else if (entry.isFile() && entry.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(file).mtimeMs);
  }
  return newest;
}

/** The kernel's environment: tslab (the kernel's command) on PATH, and the run folder. */
export function kernelEnv(runDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${NODE_BIN}${path.delimiter}${process.env.PATH ?? ""}`,
    CAPTIONER_RUN_DIR: path.resolve(runDir),
    ...extra,
  };
}

/** Executes, signs and exports the notebooks (by default the three) in order; stops at the first that fails. */
export async function runNotebooks(options: RunOptions): Promise<NotebookRun[]> {
  assertJupyter();
  fs.mkdirSync(options.runDir, { recursive: true });
  const log = options.log ?? console.log;
  const runs: NotebookRun[] = [];
  for (const source of options.notebooks ?? NOTEBOOKS) {
    const notebook = path.basename(source);
    const start = performance.now();
    log(`executing ${notebook}`);
    const executed = await executeNotebook(source, options);
    await command(PYTHON, ["-m", "nbformat.sign", executed]); // `jupyter trust` (Debian ships no jupyter-trust command)
    const html = await exportHtml(executed);
    const seconds = (performance.now() - start) / 1000;
    log(`executed ${notebook} in ${seconds.toFixed(0)} s → ${shortPath(html)}`);
    runs.push({ notebook, executed, html, seconds });
  }
  return runs;
}

/**
 * Points `<runsDir>/latest` at `runDir` (a relative symlink when the run is inside runsDir), which
 * the notebooks open by default: `npm run lab` then continues from the last `npm start`. A
 * `latest` that is a real folder (a run trained there from the notebooks) is left alone. Returns
 * the line to print.
 */
export function pointLatestRun(runsDir: string, runDir: string): string {
  const latest = path.join(runsDir, "latest");
  const stat = fs.lstatSync(latest, { throwIfNoEntry: false });
  if (stat && !stat.isSymbolicLink()) {
    return `${shortPath(latest)} is a run folder of its own, left as it is; open this run with CAPTIONER_RUN_DIR=${shortPath(runDir)} npm run lab`;
  }
  const relative = path.relative(runsDir, runDir);
  const target = relative.startsWith("..") || path.isAbsolute(relative) ? path.resolve(runDir) : relative;
  fs.mkdirSync(runsDir, { recursive: true });
  // A new link under a temporary name, renamed over the old one: `latest` is never missing.
  const temporary = `${latest}.tmp-${process.pid}`;
  fs.symlinkSync(target, temporary);
  fs.renameSync(temporary, latest);
  return `${shortPath(latest)} → ${target}: \`npm run lab\` opens the notebooks on this run`;
}

/** A path relative to the project when it is inside it, else absolute. */
export function shortPath(file: string): string {
  const relative = path.relative(PROJECT_ROOT, file);
  return relative.startsWith("..") ? path.resolve(file) : relative;
}

/**
 * Runs one notebook into the run folder, the kernel working beside the notebook as in JupyterLab
 * (so relative paths in cells mean the same). Throws NotebookRunError naming the failing cell.
 */
async function executeNotebook(source: string, options: RunOptions): Promise<string> {
  const notebook = path.basename(source);
  const executed = path.join(options.runDir, notebook);
  const args = [EXECUTE_SCRIPT, source, executed, "--cwd", path.dirname(source)];
  args.push("--timeout", String(options.cellTimeout ?? 1800));
  if (options.echo) args.push("--echo");
  const result = await command(PYTHON, args, { env: kernelEnv(options.runDir, options.env), echo: options.echo, check: false });
  if (result.code !== 0) {
    // The script's last message names the cell and quotes its error; a kernel that died said why just before it.
    throw new NotebookRunError(notebook, executed, tail(result.stderr, 40));
  }
  return executed;
}

/** `jupyter nbconvert --to html`: the executed notebook as one page, next to it. */
async function exportHtml(executed: string): Promise<string> {
  await command(NBCONVERT, ["--to", "html", "--log-level=WARN", executed, "--output-dir", path.dirname(executed)]);
  return executed.replace(/\.ipynb$/, ".html");
}

interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command. With `echo`, its stdout goes straight to ours (a terminal stays a terminal, so the
 * training progress line redraws in place) and its stderr is shown as well as kept.
 */
function command(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; echo?: boolean; check?: boolean } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, stdio: ["ignore", options.echo ? "inherit" : "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => (stdout = keepTail(stdout + chunk)));
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = keepTail(stderr + chunk);
      if (options.echo) process.stderr.write(chunk);
    });
    child.on("error", (error) => reject(new Error(`run-notebooks: cannot run ${file}: ${error.message}`)));
    child.on("close", (code) => {
      if (code !== 0 && options.check !== false) {
        reject(new Error(`run-notebooks: ${path.basename(file)} ${args.join(" ")} exited with ${code}\n${tail(stderr)}`));
      } else {
        resolve({ code, stdout, stderr });
      }
    });
  });
}

/** Keeps the last 64 KB of a growing output: enough for any error message. */
function keepTail(text: string): string {
  return text.length > 65536 ? text.slice(-65536) : text;
}

function tail(text: string, lines = 30): string {
  return text.trim().split("\n").slice(-lines).join("\n");
}

/** A problem found in an executed notebook's outputs. */
export interface OutputProblem {
  cell: number;
  text: string;
}

/**
 * Error outputs of an executed notebook: outputs of type "error", and stderr text that says "Error"
 * (tslab reports a failing cell on stderr). A notebook that ran to the end should have none.
 */
export function errorOutputs(executedPath: string): OutputProblem[] {
  const nb = readJson(executedPath) as { cells: { outputs?: NotebookOutput[] }[] };
  const problems: OutputProblem[] = [];
  nb.cells.forEach((cell, i) => {
    for (const out of cell.outputs ?? []) {
      if (out.output_type === "error") problems.push({ cell: i + 1, text: `${out.ename}: ${out.evalue}` });
      const text = joinText(out.text);
      if (out.output_type === "stream" && out.name === "stderr" && text.includes("Error")) problems.push({ cell: i + 1, text });
    }
  });
  return problems;
}

interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  ename?: string;
  evalue?: string;
}

/** nbformat stores multi-line text as a list of lines or as one string. */
function joinText(text: string | string[] | undefined): string {
  return Array.isArray(text) ? text.join("") : (text ?? "");
}
