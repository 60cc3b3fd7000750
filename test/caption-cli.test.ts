/**
 * `npm run caption` end to end, on a checkpoint trained here for a few seconds on a tiny
 * synthetic dataset: text and JSON output, folders of every image format sharp reads, a COCO
 * results file that `npm run eval` scores, and the errors (unreadable images, file names
 * without an id, a folder without a checkpoint).
 * Most cases call the script's main() in this process; one spawns the real command.
 */
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import sharp from "sharp";
import { initBackend } from "../lib/runtime/backend";
import { Captioner } from "../lib/inference/captioner";
import { tinyTrainConfig } from "./helpers/tiny-config";
import { evaluateFiles, METRIC_NAMES } from "../lib/evaluation/metrics/evaluate";
import { ensureSyntheticDataset } from "../lib/data/synthetic/ensure";
import { train } from "../lib/train/loop";
import { cocoImageId, main } from "../scripts/caption";

const ROOT = path.resolve(__dirname, "..");
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "caption-cli-"));
const DATA = path.join(TMP, "data");
const RUN = path.join(TMP, "run");
const TEST_IMAGES = path.join(DATA, "images", "test2014");
const TEST_REFS = path.join(DATA, "annotations", "captions_test2014.json");

const config = tinyTrainConfig(DATA, RUN, { seed: 5 }); // 2 epochs of 30 steps

/** Runs the command in this process, collecting what it writes. */
async function caption(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

let testFiles: string[]; // the test split's images, sorted

before(async () => {
  await initBackend();
  await ensureSyntheticDataset(DATA, { images: config.syntheticImages, seed: config.seed });
  const result = await train(config, { log: () => {} });
  result.model.dispose();
  testFiles = fs.readdirSync(TEST_IMAGES).sort().map((name) => path.join(TEST_IMAGES, name));
  assert.equal(testFiles.length, 6);
});

after(() => fs.rmSync(TMP, { recursive: true, force: true }));

test("text output: one `file: caption` line per image of a folder, sorted, the captions the library gives", async () => {
  const { code, out, err } = await caption("--checkpoint", RUN, TEST_IMAGES);
  assert.equal(code, 0, err.join("\n"));
  assert.deepEqual(out.map((l) => l.slice(0, l.indexOf(": "))), testFiles);
  // A model of the synthetic scenes says that it knows only shapes.
  assert.ok(err.some((l) => /trained on the synthetic scenes: it knows only coloured shapes/.test(l)), err.join("\n"));

  const model = await Captioner.load(RUN, undefined, "best"); // the CLI captions with a run's best checkpoint
  const expected = await model.captionFiles(testFiles);
  model.dispose();
  assert.deepEqual(out, testFiles.map((f, i) => `${f}: ${expected[i].caption}`));
  assert.ok(expected.some((c) => c.caption.split(" ").length >= 3), `the model says something: ${out.join(" | ")}`);
});

test("--json: one object per line with file, caption and logProb; greedy and beam search", async () => {
  const text = await caption("--checkpoint", RUN, ...testFiles);
  for (const beam of ["1", "3"]) {
    const { code, out } = await caption("--checkpoint", RUN, "--json", "--beam", beam, ...testFiles);
    assert.equal(code, 0);
    const lines = out.map((l) => JSON.parse(l) as { file: string; caption: string; logProb: number });
    assert.deepEqual(lines.map((l) => l.file), testFiles);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), ["file", "caption", "logProb"]);
      assert.ok(Number.isFinite(l.logProb) && l.logProb < 0, `${l.file}: logProb ${l.logProb}`);
    }
    if (beam === "1") assert.deepEqual(lines.map((l) => `${l.file}: ${l.caption}`), text.out);
  }
});

test("--results writes COCO results that npm run eval scores against the references", async () => {
  const results = path.join(TMP, "results.json");
  const { code } = await caption("--checkpoint", RUN, "--results", results, TEST_IMAGES);
  assert.equal(code, 0);
  const written = JSON.parse(fs.readFileSync(results, "utf8")) as { image_id: number; caption: string }[];
  const refs = JSON.parse(fs.readFileSync(TEST_REFS, "utf8")) as { images: { id: number }[] };
  assert.deepEqual(written.map((r) => r.image_id), refs.images.map((i) => i.id).sort((a, b) => a - b));
  assert.deepEqual(Object.keys(written[0]), ["image_id", "caption"]);

  const { scores, perImage } = evaluateFiles(TEST_REFS, results);
  assert.equal(perImage.size, 6);
  for (const name of METRIC_NAMES) assert.ok(Number.isFinite(scores[name]), `${name}: ${scores[name]}`);
  assert.ok(scores.Bleu_1 > 0.2, `Bleu_1 ${scores.Bleu_1}: the captions use the references' words`);
});

test("a folder: every format sharp reads is captioned (GIF, TIFF, AVIF, SVG ...); anything else is named as skipped", async () => {
  const folder = fs.mkdtempSync(path.join(TMP, "formats-"));
  const image = sharp(testFiles[0]);
  await image.clone().gif().toFile(path.join(folder, "a.gif"));
  await image.clone().tiff().toFile(path.join(folder, "b.tif"));
  await image.clone().avif().toFile(path.join(folder, "c.avif"));
  await image.clone().webp().toFile(path.join(folder, "d.webp"));
  await image.clone().jpeg().toFile(path.join(folder, "e.JPG"));
  fs.writeFileSync(path.join(folder, "f.svg"), '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="20" fill="red"/></svg>');
  fs.writeFileSync(path.join(folder, "notes.txt"), "not an image");
  fs.mkdirSync(path.join(folder, "more"));
  const images = ["a.gif", "b.tif", "c.avif", "d.webp", "e.JPG", "f.svg"].map((name) => path.join(folder, name));

  const { code, out, err } = await caption("--checkpoint", RUN, folder);
  assert.equal(code, 0, err.join("\n"));
  assert.deepEqual(out.map((l) => l.slice(0, l.indexOf(": "))), images);
  assert.ok(err.includes(`${folder}: skipped 2 entries, not images sharp reads (folders are not searched): more/, notes.txt`), err.join("\n"));
  // The same captions as when the files are named one by one.
  assert.deepEqual(out, (await caption("--checkpoint", RUN, ...images)).out);
});

test("image ids come from COCO file names; a name without one is an error before any work", async () => {
  assert.equal(cocoImageId("x/COCO_val2014_000000000139.jpg"), 139);
  assert.equal(cocoImageId("COCO_test2014_000000581929.webp"), 581929);
  const photo = path.join(TMP, "holiday-photo.jpg");
  fs.copyFileSync(testFiles[0], photo);
  await assert.rejects(caption("--checkpoint", RUN, "--results", path.join(TMP, "r.json"), photo), (e: Error) => {
    assert.match(e.message, /holiday-photo\.jpg: cannot derive a COCO image id from the file name/);
    return true;
  });
  assert.equal(fs.existsSync(path.join(TMP, "r.json")), false);
  // Without --results any name will do.
  assert.equal((await caption("--checkpoint", RUN, photo)).code, 0);
});

test("a missing or corrupt image is reported by name, the others are captioned, and the exit code is 1", async () => {
  const corrupt = path.join(TMP, "COCO_test2014_000000999999.jpg");
  fs.writeFileSync(corrupt, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(300, 7)]));
  const missing = path.join(TMP, "COCO_test2014_000000888888.jpg");
  const results = path.join(TMP, "partial.json");
  const { code, out, err } = await caption("--checkpoint", RUN, "--results", results, testFiles[0], missing, corrupt, testFiles[1]);
  assert.equal(code, 1);
  assert.deepEqual(out.map((l) => l.slice(0, l.indexOf(": "))), [testFiles[0], testFiles[1]]);
  assert.ok(err.includes(`${missing}: file not found`), err.join("\n"));
  assert.ok(err.some((l) => l.startsWith(`${corrupt}: corrupt or truncated image`)), err.join("\n"));
  assert.ok(err.includes("2 of 4 inputs could not be captioned"), err.join("\n"));
  const written = JSON.parse(fs.readFileSync(results, "utf8")) as { image_id: number }[];
  assert.deepEqual(written.map((r) => r.image_id), [cocoImageId(testFiles[0]), cocoImageId(testFiles[1])]);

  // The library call behind it: without an error handler, the first unreadable file fails the call by name.
  const model = await Captioner.load(RUN);
  try {
    await assert.rejects(model.captionFiles([testFiles[0], missing, corrupt]), (e: Error) => e.message === `${missing}: file not found`);
  } finally {
    model.dispose();
  }
});

test("a folder without a checkpoint, and bad arguments, are clear errors", async () => {
  await assert.rejects(caption("--checkpoint", DATA, testFiles[0]), (e: Error) => {
    assert.equal(e.message, `${DATA}: no checkpoint here (expected checkpoint.json, latest.json or checkpoints/latest.json)`);
    return true;
  });
  await assert.rejects(caption("--checkpoint", RUN), /no images given/);
  await assert.rejects(caption("--checkpoint", RUN, "--beam", "0", testFiles[0]), /--beam must be a positive integer, got 0/);
  await assert.rejects(caption("--checkpoint", RUN, "--dangling-ends", "maybe", testFiles[0]), /--dangling-ends must be allow or forbid, got maybe/);
  const empty = fs.mkdtempSync(path.join(TMP, "empty-"));
  const { code, err } = await caption("--checkpoint", RUN, empty, testFiles[0]);
  assert.equal(code, 1);
  assert.ok(err.some((l) => l.startsWith(`${empty}: no image files in this folder`)), err.join("\n"));
});

test("the real command: captions on stdout, backend and errors on stderr, exit code 1 after a missing image", () => {
  const missing = path.join(TMP, "nowhere.png");
  const run = spawnSync(process.execPath, ["--import", "tsx", "scripts/caption.ts", "--checkpoint", RUN, testFiles[2], missing], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stdout, new RegExp(`^${testFiles[2]}: \\w+`));
  assert.equal(run.stdout.trim().split("\n").length, 1);
  assert.match(run.stderr, /^backend: /m);
  assert.match(run.stderr, new RegExp(`^${missing}: file not found$`, "m"));

  const wrong = spawnSync(process.execPath, ["--import", "tsx", "scripts/caption.ts", "--checkpoint", TMP, testFiles[2]], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, new RegExp(`^caption: ${TMP}: no checkpoint here`, "m"));
  assert.equal(wrong.stdout, "");
});
