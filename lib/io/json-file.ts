/** JSON files: read with errors that name the file, and written so a reader never sees half of one. */
import * as fs from "node:fs";
import { nanoid } from "nanoid";

/** JSON.parse of a file, with an error that names the file. */
export function readJson(file: string): unknown {
  if (!fs.existsSync(file)) throw new Error(`${file}: file not found`);
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Writes to a temporary file and renames it over the target: readers see the old or the new file,
 * never half. `indent` 0 writes compact JSON (for large files rewritten often).
 */
export function writeJsonAtomically(file: string, value: unknown, indent = 2): void {
  const tmp = `${file}.tmp-${nanoid(6)}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, indent) + "\n");
  fs.renameSync(tmp, file);
}
