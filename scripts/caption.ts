/**
 * npm run caption -- [--checkpoint DIR] [--beam K] [--alpha A] [--max-length N] [--allow-unk] [--dangling-ends allow|forbid] [--json] [--results FILE] IMAGE_OR_FOLDER...
 *
 * Captions image files with a trained model: by default the captioner that ships with the
 * project (models/flickr8k-mobilenet, offline). DIR is a model folder, a run folder (its best
 * checkpoint by val CIDEr) or a checkpoint folder. It decodes as the model's card says (the
 * shipped model: beam 3, alpha 1) unless --beam / --alpha say otherwise; FLAGS lists every flag. A model trained on the synthetic scenes
 * says, on stderr, that it only knows coloured shapes. A folder argument stands for the image files in it: every file whose
 * name ends as a format that sharp reads does (.jpg, .png, .webp, .gif, .tif, .avif, .svg ...;
 * see IMAGE_SUFFIXES), sorted by name, not recursive; what else is in the folder is named on
 * stderr as skipped. Prints one `file: caption` line per image, or with --json one JSON
 * object per line: {"file", "caption", "logProb"}.
 *
 * --results FILE also writes the captions in COCO results format, [{"image_id", "caption"}],
 * for `npm run eval`; the image id comes from the file name (COCO_val2014_000000000139.jpg → 139).
 *
 * --explain DIR also writes, for each image, where the model looked for each word of its caption
 * (Grad-CAM, lib/explain/): DIR/<file name without extension>.json and a self-contained .html
 * (see lib/explain/write-explanations.ts).
 *
 * An image that cannot be read (missing, corrupt) is reported on stderr and the others are
 * still captioned; the exit code is then 1.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { initBackend } from "../lib/runtime/backend";
import { Captioner, type CaptionOptions } from "../lib/inference/captioner";
import { modelCheckpoint, photoWarning, SHIPPED_MODEL } from "../lib/inference/model-folder";
import type { CocoResult } from "../lib/evaluation/metrics/evaluate";
import { ImageError } from "../lib/data/transforms";
import type { Caption } from "../lib/inference/greedy";
import { writeExplanations } from "../lib/explain/write-explanations";
import { danglingEndsFlag } from "./dangling-ends-arg";

/** Every flag: its parseArgs type, its default as `--help` shows it, and what it does. */
const FLAGS = {
  checkpoint: { type: "string", shown: "models/flickr8k-mobilenet", what: "the model: a model folder, a run folder (its best checkpoint) or a checkpoint folder" },
  beam: { type: "string", shown: "the model's", what: "beam size, 1 = greedy; the model's is its card's (3 for the shipped model), or greedy for a run" },
  alpha: { type: "string", shown: "the model's", what: "beam search's length normalisation: captions compared by logProb / length^alpha (the shipped card's: 1)" },
  "max-length": { type: "string", shown: "20", what: "most tokens per caption, <end> included" },
  "allow-unk": { type: "boolean", shown: "false", what: "let captions contain <unk> (masked out by default: a training device, not a word)" },
  "dangling-ends": { type: "string", shown: "the model's", what: 'allow or forbid a caption to end on "a", "the", "in"... (lib/inference/greedy.ts, DANGLING_WORDS); the shipped card allows it' },
  json: { type: "boolean", shown: "false", what: 'one JSON object per line: {"file", "caption", "logProb"}' },
  results: { type: "string", shown: "none", what: "also write the captions as a COCO results file for npm run eval (image id from the file name)" },
  explain: { type: "string", shown: "none", what: "also write, per image, DIR/<name>.json and .html: where the model looked for each word (Grad-CAM)" },
  help: { type: "boolean", shown: "", what: "this text" },
} as const;

const USAGE = `usage: npm run caption -- [flags] IMAGE_OR_FOLDER...

${Object.entries(FLAGS)
  .map(([name, flag]) => {
    const shown = flag.shown ? ` (default: ${flag.shown})` : "";
    return `  --${name.padEnd(11)} ${flag.what}${shown}`;
  })
  .join("\n")}`;

/**
 * The file name endings of every format that this build of sharp reads from a file, as
 * sharp.format lists them: with sharp 0.34's prebuilt libvips, .jpg .jpeg .jpe .jfif .png
 * .webp .tif .tiff .gif .svg .svgz .svg.gz .avif .v .vips.
 */
export const IMAGE_SUFFIXES: readonly string[] = Object.values(sharp.format).flatMap((format) =>
  format.input.file ? (format.input.fileSuffix ?? []) : [],
);

/** Whether a file name ends as a format sharp reads (".svg.gz" included, whatever the case). */
function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_SUFFIXES.some((suffix) => lower.endsWith(suffix));
}

/** Where the command writes: stdout for captions, stderr for everything else. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}
const CONSOLE: Output = { out: (line) => console.log(line), err: (line) => console.error(line) };

interface CliOptions {
  checkpoint: string;
  inputs: string[];
  json: boolean;
  results?: string;
  /** Folder for the word maps (--explain). */
  explain?: string;
  caption: CaptionOptions;
}

function parseCliArgs(argv: string[]): CliOptions | "help" {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([name, flag]) => [name, { type: flag.type }]));
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options }) as {
    values: Partial<Record<keyof typeof FLAGS, string | boolean>>;
    positionals: string[];
  };
  if (values.help) return "help";
  if (values.checkpoint === undefined && !fs.existsSync(SHIPPED_MODEL)) {
    throw new Error(`no --checkpoint given, and no shipped model at ${SHIPPED_MODEL}\n${USAGE}`);
  }
  if (positionals.length === 0) throw new Error(`no images given\n${USAGE}`);
  const text = (name: "beam" | "alpha" | "max-length") => values[name] as string | undefined;
  return {
    checkpoint: (values.checkpoint as string | undefined) ?? SHIPPED_MODEL,
    inputs: positionals,
    json: values.json === true,
    results: values.results as string | undefined,
    explain: values.explain as string | undefined,
    // Settings not given stay undefined: the model's own decoding applies (Captioner.decoding).
    caption: {
      beamSize: optional(text("beam"), (v) => positiveInt("beam", v)),
      alpha: optional(text("alpha"), (v) => nonNegative("alpha", v)),
      maxLength: positiveInt("max-length", text("max-length") ?? "20"),
      allowUnk: values["allow-unk"] === true,
      noDanglingEnd: danglingEndsFlag("dangling-ends", values["dangling-ends"] as string | undefined),
    },
  };
}

function optional<T>(value: string | undefined, parse: (value: string) => T): T | undefined {
  return value === undefined ? undefined : parse(value);
}

function nonNegative(name: string, value: string): number {
  const x = Number(value);
  if (value.trim() === "" || !Number.isFinite(x) || x < 0) throw new Error(`--${name} must be a number ≥ 0, got ${value}`);
  return x;
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

/**
 * The files to caption: each file argument as given (a missing one is reported later, with
 * the other unreadable images), each folder's image files sorted by name. A folder without
 * images is an error, returned in `problems`; what a folder holds besides images is named in
 * `skipped`, one line per folder.
 */
export function listImages(inputs: string[]): { files: string[]; problems: string[]; skipped: string[] } {
  const files: string[] = [];
  const problems: string[] = [];
  const skipped: string[] = [];
  for (const input of inputs) {
    if (!fs.existsSync(input) || !fs.statSync(input).isDirectory()) {
      files.push(input);
      continue;
    }
    const { images, others } = readFolder(input);
    if (images.length === 0) problems.push(`${input}: no image files in this folder (${IMAGE_SUFFIXES.join(" ")})`);
    if (others.length > 0) skipped.push(`${input}: skipped ${describeSkipped(others)}`);
    files.push(...images);
  }
  return { files, problems, skipped };
}

/** A folder's image files (paths, sorted by name) and the names of everything else in it. */
function readFolder(folder: string): { images: string[]; others: string[] } {
  const images: string[] = [];
  const others: string[] = [];
  for (const name of fs.readdirSync(folder).sort()) {
    const file = path.join(folder, name);
    if (fs.statSync(file).isDirectory()) others.push(`${name}/`);
    else if (isImageName(name)) images.push(file);
    else others.push(name);
  }
  return { images, others };
}

/** "3 entries, not images sharp reads (folders are not searched): a.txt, b.heic, raw/" (at most 5 names). */
function describeSkipped(names: string[]): string {
  const shown = names.length > 5 ? [...names.slice(0, 5), `and ${names.length - 5} more`] : names;
  const count = names.length === 1 ? "1 entry" : `${names.length} entries`;
  return `${count}, not images sharp reads (folders are not searched): ${shown.join(", ")}`;
}

/** The COCO image id in a file name: the number at the end of its stem (COCO_val2014_000000000139.jpg → 139). */
export function cocoImageId(file: string): number {
  const match = /(\d+)$/.exec(path.parse(file).name);
  if (!match) {
    throw new Error(`${file}: cannot derive a COCO image id from the file name (expected a name like COCO_val2014_000000000139.jpg)`);
  }
  return Number(match[1]);
}

/** Image ids for the results file, checked before any work is done: each file needs its own. */
function imageIds(files: string[]): number[] {
  const seen = new Map<number, string>();
  return files.map((file) => {
    const id = cocoImageId(file);
    const other = seen.get(id);
    if (other !== undefined) throw new Error(`${file}: image id ${id} is also the id of ${other}; a results file holds one caption per image`);
    seen.set(id, file);
    return id;
  });
}

/** Runs the command on `argv` (the arguments after the script name) and returns its exit code. */
export async function main(argv: string[], io: Output = CONSOLE): Promise<number> {
  const options = parseCliArgs(argv);
  if (options === "help") {
    io.out(USAGE);
    return 0;
  }
  const { files, problems, skipped } = listImages(options.inputs);
  skipped.forEach((line) => io.err(line));
  problems.forEach((p) => io.err(p));
  const ids = options.results !== undefined ? imageIds(files) : undefined;
  const checkpoint = modelCheckpoint(options.checkpoint); // a wrong folder fails before the backend starts
  const warning = photoWarning(checkpoint);
  if (warning) io.err(warning);

  await initBackend({ log: io.err });
  const model = await Captioner.load(options.checkpoint, undefined, "best");
  const results: CocoResult[] = [];
  const explained = new Map<number, Caption>();
  let failed = problems.length;
  try {
    await model.captionEachFile(
      files,
      options.caption,
      (index, generated) => {
        const { caption, logProb } = generated;
        const file = files[index];
        io.out(options.json ? JSON.stringify({ file, caption, logProb }) : `${file}: ${caption}`);
        if (ids) results.push({ image_id: ids[index], caption });
        if (options.explain !== undefined) explained.set(index, generated);
      },
      (index, error) => {
        failed += 1;
        io.err(error instanceof ImageError ? error.message : `${files[index]}: ${error.message}`);
      },
    );
    if (options.explain !== undefined) failed += await writeExplanations(model, files, explained, options.explain, io.err);
  } finally {
    model.dispose();
  }

  if (options.results !== undefined) {
    fs.writeFileSync(options.results, JSON.stringify(results, null, 1) + "\n");
    io.err(`wrote ${results.length} captions to ${options.results}`);
  }
  if (failed > 0) io.err(`${failed} of ${files.length + problems.length} inputs could not be captioned`);
  return failed > 0 ? 1 : 0;
}

// Run only as a command, so that tests can call main() without starting a process.
if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: Error) => {
      console.error(`caption: ${error.message}`);
      process.exitCode = 1;
    },
  );
}
