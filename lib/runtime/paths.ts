/**
 * The project's own folder, wherever the code runs from: a script at the root (`npm run ...`),
 * a notebook in `notebooks/`, or the compiled library in `lib/dist/`. Default data paths are
 * resolved against it, so `data/` means the same folder for all of them.
 */
import * as fs from "node:fs";
import * as path from "node:path";

const PACKAGE_NAME = "show-and-tell-ts";

/** The folder of the package.json named "show-and-tell-ts", found by walking up from this file. */
export function projectRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === PACKAGE_NAME) return dir;
    if (path.dirname(dir) === dir) throw new Error(`paths.ts: no package.json named ${PACKAGE_NAME} above ${__dirname}`);
  }
}

/** A path inside the project (absolute paths are kept as they are). */
export function projectPath(...parts: string[]): string {
  return path.resolve(projectRoot(), ...parts);
}
