/**
 * `npm run lab`: opens the notebooks in Jupyter for stepping through them cell by cell.
 *
 *   npm run lab                                 Debian's Jupyter Notebook on notebooks/
 *   npm run lab -- --no-browser --port 8890     any further arguments go to jupyter-notebook
 *
 * It builds lib/ if its sources changed (the notebooks import the compiled library), registers the
 * tslab kernel if needed, and puts node_modules/.bin on PATH, where Jupyter finds the kernel's
 * `tslab` command. Run folders: the notebooks use runs/latest (which `npm start` points at its
 * last run) unless CAPTIONER_RUN_DIR says otherwise.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { buildLibIfStale, ensureKernel, kernelEnv, NOTEBOOKS_DIR, PROJECT_ROOT, shortPath } from "./run-notebooks";

const JUPYTER_NOTEBOOK = "/usr/bin/jupyter-notebook";

function main(): void {
  if (!fs.existsSync(JUPYTER_NOTEBOOK)) {
    console.error(
      `lab: ${JUPYTER_NOTEBOOK} not found. Install Debian's Jupyter with \`bash scripts/setup.sh\` (as root), ` +
        "or see environment.md for pip's jupyterlab (then register the kernel with `npx tslab install` and run `jupyter lab` in notebooks/).",
    );
    process.exit(1);
  }
  buildLibIfStale();
  ensureKernel();

  const runDir = process.env.CAPTIONER_RUN_DIR ?? path.join(PROJECT_ROOT, "runs", "latest");
  const args = [`--notebook-dir=${NOTEBOOKS_DIR}`, ...process.argv.slice(2)];
  // Jupyter refuses to run as root unless told to (containers often run as root).
  if (process.getuid?.() === 0) args.push("--allow-root");
  console.log(`lab: ${JUPYTER_NOTEBOOK} ${args.join(" ")}  (run folder: ${shortPath(runDir)})`);

  const jupyter = spawn(JUPYTER_NOTEBOOK, args, { cwd: NOTEBOOKS_DIR, env: kernelEnv(runDir), stdio: "inherit" });
  // Ctrl-C reaches Jupyter too (same terminal): let it ask whether to shut down, and leave with it.
  process.on("SIGINT", () => {});
  jupyter.on("exit", (code) => process.exit(code ?? 0));
}

main();
