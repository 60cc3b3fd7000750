/**
 * Extract a zip archive safely, one entry at a time.
 *
 * yauzl reads the archive's central directory (its table of contents at the end) and
 * streams each entry, so memory stays small even for the 13 GB train2014.zip. What yauzl
 * leaves to us, and this file adds:
 *
 * - CRC-32: yauzl does not check it. We compute it over each entry's bytes as they are
 *   written and compare it to the central directory's value, so a damaged archive is
 *   caught instead of leaving a silently broken image.
 * - Zip slip: an entry named `../../.bashrc` must not be written outside the destination.
 *   yauzl rejects such names already; we check the resolved path again, because the
 *   safety of extraction rests on it.
 * - Layout: every entry must sit under the expected top-level folder (`train2014/...`),
 *   so the files land where the rest of the project looks for them.
 * - `__MACOSX/`: the resource forks that macOS's zip tool adds (Flickr8k's zips have them) are
 *   never data, and are skipped.
 */

import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import * as yauzl from "yauzl";

export interface ExtractOptions {
  /** Every entry must be inside this top-level folder of the archive (e.g. "val2014"). */
  topDir?: string;
  /** Called after each entry, with the entries done and the archive's entry count. */
  onProgress?: (done: number, total: number) => void;
}

/** A file written by extraction: its path relative to the destination, and its size. */
export interface ExtractedFile {
  path: string;
  size: number;
}

/**
 * Extracts `zipPath` into `dest`. On a damaged or unsafe archive it throws an error that
 * names the archive (and the entry); the entry being written is removed, the entries
 * before it are kept (extracting again overwrites them).
 */
export async function extractZip(zipPath: string, dest: string, options: ExtractOptions = {}): Promise<ExtractedFile[]> {
  const name = path.basename(zipPath);
  const root = path.resolve(dest);
  const zip = await yauzl.openPromise(zipPath, { lazyEntries: true }).catch((err: Error) => {
    throw new Error(`${name} is not a readable zip archive: ${err.message}`, { cause: err });
  });
  const files: ExtractedFile[] = [];
  const madeDirs = new Set<string>(); // 83k images share one folder: create it once
  let done = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.startsWith("__MACOSX/")) {
        options.onProgress?.(++done, zip.entryCount);
        continue;
      }
      const target = targetPath(root, entry.fileName, options.topDir, name);
      if (entry.fileName.endsWith("/")) {
        await fsp.mkdir(target, { recursive: true });
      } else {
        await makeDir(path.dirname(target), madeDirs);
        await writeEntry(zip, entry, target, name);
        files.push({ path: path.relative(root, target), size: entry.uncompressedSize });
      }
      options.onProgress?.(++done, zip.entryCount);
    }
  } catch (err) {
    // Leaving the loop early closes the archive (yauzl's autoClose).
    const message = (err as Error).message;
    throw message.startsWith(name) ? err : new Error(`${name} is corrupt or unsafe: ${message}`, { cause: err });
  }
  return files;
}

/** Streams one entry to `target`, checking its CRC-32; a failed entry leaves no file behind. */
async function writeEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, target: string, name: string): Promise<void> {
  try {
    const input = await zip.openReadStreamPromise(entry);
    await pipeline(input, crcCheck(entry.crc32), fs.createWriteStream(target));
  } catch (err) {
    await fsp.rm(target, { force: true });
    throw new Error(`${name}: entry ${entry.fileName}: ${(err as Error).message}`, { cause: err });
  }
}

/** Passes bytes through and fails at the end when their CRC-32 differs from `expected`. */
function crcCheck(expected: number): Transform {
  let crc = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      crc = zlib.crc32(chunk, crc);
      done(null, chunk);
    },
    flush(done) {
      const hex = (n: number) => n.toString(16).padStart(8, "0");
      done(crc === expected ? null : new Error(`CRC-32 is ${hex(crc)} but the archive says ${hex(expected)}`));
    },
  });
}

/** Where an entry goes; refuses names outside `root` or outside the expected top folder. */
function targetPath(root: string, fileName: string, topDir: string | undefined, name: string): string {
  const target = path.resolve(root, fileName);
  if (!target.startsWith(root + path.sep)) {
    throw new Error(`${name}: entry ${fileName} would be written outside ${root}`);
  }
  if (topDir !== undefined && !fileName.startsWith(`${topDir}/`)) {
    throw new Error(`${name}: entry ${fileName} is not inside the expected folder ${topDir}/`);
  }
  return target;
}

async function makeDir(dir: string, made: Set<string>): Promise<void> {
  if (made.has(dir)) return;
  await fsp.mkdir(dir, { recursive: true });
  made.add(dir);
}
