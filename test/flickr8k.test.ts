/**
 * Flickr8k: the two layouts (token file + split files, captions.txt), the token file's known
 * quirks, errors that name the file, `npm run data:flickr8k` against a local server, and the
 * real dataset in ../shared/flickr8k (skipped, saying why, where it is absent).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { ZipFile } from "yazl";
import { initBackend } from "../lib/runtime/backend";
import { FLICKR8K_CONFIG } from "../lib/train/config";
import { loadSplit } from "../lib/data/dataset";
import { readLog } from "../lib/train/train-log";
import { train } from "../lib/train/loop";
import { loadTensors } from "../lib/io/weights-io";
import { flickr8kImageId, loadFlickr8kSplit, parseTokenFile } from "../lib/data/flickr8k";
import { FileServer } from "./helpers/file-server";

const SHARED_FLICKR = path.resolve(__dirname, "../../shared/flickr8k");
const sharedMissing = fs.existsSync(path.join(SHARED_FLICKR, "Flickr8k.token.txt")) ? undefined : `${SHARED_FLICKR} not found`;
const SHARED_V1_075 = path.resolve(__dirname, "../../shared/models/mobilenet_v1_0.75_224");
const recipeMissing = sharedMissing ?? (fs.existsSync(path.join(SHARED_V1_075, "model.json")) ? undefined : `${SHARED_V1_075} not found`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "flickr8k-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => fs.mkdtempSync(path.join(tmp, `t${dirCount++}-`));

/** Six images, two per split; their captions name their number, so a mix-up shows. */
const NAMES = ["101_aa.jpg", "102_bb.jpg", "201_cc.jpg", "202_dd.jpg", "301_ee.jpg", "302_ff.jpg"];
const SPLIT_FILES = { "Flickr_8k.trainImages.txt": NAMES.slice(0, 2), "Flickr_8k.devImages.txt": NAMES.slice(2, 4), "Flickr_8k.testImages.txt": NAMES.slice(4) };

/** The text files of the official layout, with both quirks of the real token file. */
function officialText(): Record<string, string> {
  const lines = NAMES.flatMap((name) => [0, 1, 2, 3, 4].map((k) => `${name}#${k}\tphoto ${name.slice(0, 3)} caption ${k}`));
  lines[3] = lines[3].replace("\t", "  "); // the real file's line with two spaces instead of a tab
  lines.push(...[0, 1, 2, 3, 4].map((k) => `2258277193_586949ec62.jpg.1#${k}\ta caption of no image`));
  const files: Record<string, string> = { "Flickr8k.token.txt": lines.join("\n") + "\n" };
  for (const [file, names] of Object.entries(SPLIT_FILES)) files[file] = names.join("\n") + "\n";
  return files;
}

function writeDataset(root: string, imageFolder: string, text: Record<string, string>): void {
  fs.mkdirSync(path.join(root, imageFolder), { recursive: true });
  for (const name of NAMES) fs.writeFileSync(path.join(root, imageFolder, name), "not decoded by the loader");
  for (const [file, content] of Object.entries(text)) fs.writeFileSync(path.join(root, file), content);
}

describe("the Flickr8k loader", () => {
  test("reads the official layout split by split; the quirks are reported, not fatal", async () => {
    const root = freshDir();
    writeDataset(root, "Flicker8k_Dataset", officialText());
    const warnings: string[] = [];
    const train = loadFlickr8kSplit(root, "train", (w) => warnings.push(w));
    assert.deepEqual(train.images.map((i) => i.id), [101, 102]);
    assert.equal(train.captions.length, 10);
    assert.equal(train.captionsByImageId.get(101)![3].caption, "photo 101 caption 3"); // the two-space line
    assert.equal(train.imagePath(102), path.join(root, "Flicker8k_Dataset", "102_bb.jpg"));
    assert.equal(new Set(train.captions.map((c) => c.id)).size, 10, "caption ids are unique");
    assert.ok(warnings.some((w) => /:4: spaces instead of a tab after 101_aa\.jpg#3/.test(w)), warnings.join("\n"));
    assert.ok(warnings.some((w) => /5 captions name 2258277193_586949ec62\.jpg\.1, which is not in/.test(w)), warnings.join("\n"));
    // The dev split plays "val"; loadSplit finds the layout by itself.
    const val = await loadSplit(root, "val", () => {});
    assert.deepEqual(val.index.images.map((i) => i.file_name), ["201_cc.jpg", "202_dd.jpg"]);
    assert.deepEqual((await loadSplit(root, "test", () => {})).index.images.map((i) => i.id), [301, 302]);
  });

  test("reads the captions.txt variant (CSV, quoted captions) from Images/", () => {
    const root = freshDir();
    const rows = NAMES.flatMap((name) => [0, 1, 2, 3, 4].map((k) => `${name},"a ""quoted"", caption ${k}"`));
    writeDataset(root, "Images", { "captions.txt": ["image,caption", ...rows].join("\n") });
    const warnings: string[] = [];
    const train = loadFlickr8kSplit(root, "train", (w) => warnings.push(w));
    assert.equal(train.images.length, 6, "with 6 images, the 6,000-image train split takes all of them");
    assert.equal(train.captionsByImageId.get(201)![2].caption, 'a "quoted", caption 2');
    assert.match(warnings.join("\n"), /no Flickr_8k\.\*Images\.txt split files; splitting by sorted file name \(not the standard split\)/);
  });

  test("bad input fails naming the file and what is wrong", () => {
    const root = freshDir();
    writeDataset(root, "images", officialText());
    assert.throws(() => parseTokenFile("101_aa.jpg caption without a number\n", "T.txt"), /T\.txt:1: expected "IMAGE\.jpg#N<TAB>caption"/);
    fs.rmSync(path.join(root, "images", "202_dd.jpg"));
    assert.throws(() => loadFlickr8kSplit(root, "val"), /images\/202_dd\.jpg: file not found \(listed in the val split\)/);
    fs.rmSync(path.join(root, "Flickr_8k.devImages.txt"));
    assert.throws(() => loadFlickr8kSplit(root, "train"), /Flickr_8k\.devImages\.txt: file not found/);
    assert.throws(() => loadFlickr8kSplit(freshDir(), "train"), /no Flickr8k image folder .*npm run data:flickr8k/);
    assert.throws(() => flickr8kImageId("photo.jpg"), /photo\.jpg: not a Flickr8k file name/);
  });

  test("the real Flickr8k: 6,000 / 1,000 / 1,000 images, five captions each", { skip: sharedMissing }, async () => {
    const warnings: string[] = [];
    const counts = await Promise.all(
      (["train", "val", "test"] as const).map(async (split) => {
        const { index } = await loadSplit(SHARED_FLICKR, split, (w) => warnings.push(w));
        assert.ok([...index.captionsByImageId.values()].every((list) => list.length === 5));
        return [index.images.length, index.captions.length];
      }),
    );
    assert.deepEqual(counts, [[6000, 30000], [1000, 5000], [1000, 5000]]);
    assert.ok(warnings.some((w) => /496555371_3e1ee0d97d\.jpg#3/.test(w)));
  });
});

describe("npm run data:flickr8k", () => {
  let server: FileServer;
  async function zipOf(entries: Record<string, string>): Promise<Buffer> {
    const zip = new ZipFile();
    for (const [name, data] of Object.entries(entries)) zip.addBuffer(Buffer.from(data), name);
    zip.end();
    const chunks: Buffer[] = [];
    for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  before(async () => {
    server = await FileServer.start();
    // As the real archives are: the text files at the top, the photos in Flicker8k_Dataset/,
    // and macOS's __MACOSX/ resource forks beside them.
    const text = { ...officialText(), "__MACOSX/._Flickr8k.token.txt": "resource fork" };
    const images = Object.fromEntries(NAMES.map((n) => [`Flicker8k_Dataset/${n}`, `jpeg bytes of ${n}`]));
    server.files.set("/Flickr8k_text.zip", { body: await zipOf(text) });
    server.files.set("/Flickr8k_Dataset.zip", { body: await zipOf({ ...images, "__MACOSX/Flicker8k_Dataset/._101_aa.jpg": "fork" }) });
  });
  after(() => server.close());

  test("downloads and unpacks both archives from --base-url into a dataset the loader reads; a rerun fetches nothing", async () => {
    const root = path.join(freshDir(), "flickr8k");
    const tsx = path.resolve(__dirname, "../node_modules/.bin/tsx");
    const script = path.resolve(__dirname, "../scripts/download-coco.ts");
    const args = [script, "--dataset", "flickr8k", "--root", root, "--base-url", server.url];
    const first = await promisify(execFile)(tsx, args);
    assert.match(first.stdout, /Flickr8k in .*: fetched \[text, images\], already there \[\]/);
    assert.ok(!fs.existsSync(path.join(root, "__MACOSX")), "resource forks are not extracted");
    const { index } = await loadSplit(root, "test", () => {});
    assert.deepEqual(index.images.map((i) => i.id), [301, 302]);
    assert.equal(fs.readFileSync(index.imagePath(302), "utf8"), "jpeg bytes of 302_ff.jpg");
    const requests = server.requests.length;
    const second = await promisify(execFile)(tsx, args);
    assert.match(second.stdout, /fetched \[\], already there \[text, images\]/);
    assert.equal(server.requests.length, requests, "a finished download makes no request");
  });
});

describe("the shipped captioner's recipe (FLICKR8K_CONFIG)", () => {
  /** A Flickr8k of the first n train, dev and test images of the real one (its photos linked, not copied). */
  function smallFlickr8k(n: Record<"train" | "dev" | "test", number>): string {
    const root = freshDir();
    const images = path.join(root, "images");
    fs.mkdirSync(images);
    const names: string[] = [];
    for (const [split, count] of Object.entries(n)) {
      const file = `Flickr_8k.${split}Images.txt`;
      const list = fs.readFileSync(path.join(SHARED_FLICKR, file), "utf8").split("\n").filter(Boolean).slice(0, count);
      fs.writeFileSync(path.join(root, file), list.join("\n"));
      names.push(...list);
    }
    for (const name of names) fs.symlinkSync(path.join(SHARED_FLICKR, "images", name), path.join(images, name));
    const wanted = new Set(names);
    const tokens = fs.readFileSync(path.join(SHARED_FLICKR, "Flickr8k.token.txt"), "utf8").split("\n").filter((l) => wanted.has(l.split("#")[0]));
    fs.writeFileSync(path.join(root, "Flickr8k.token.txt"), tokens.join("\n"));
    return root;
  }

  test("a few steps of the recipe, twice from scratch, end in identical weights and logs", { skip: recipeMissing }, async () => {
    await initBackend();
    const dataRoot = smallFlickr8k({ train: 48, dev: 8, test: 8 });
    const { encoder } = FLICKR8K_CONFIG;
    assert.equal(encoder.kind, "pretrained");
    const local = encoder.kind === "pretrained" ? { ...encoder, backbone: { ...encoder.backbone, source: SHARED_V1_075 } } : encoder;
    const runs = ["a", "b"].map((name) => path.join(dataRoot, `run-${name}`));
    const checkpoints: string[] = [];
    for (const runDir of runs) {
      const config = { ...FLICKR8K_CONFIG, dataRoot, featureDir: path.join(dataRoot, "features"), runDir, encoder: local };
      const result = await train(config, { maxSteps: 4, log: () => {} });
      result.model.dispose();
      checkpoints.push(path.relative(runDir, result.checkpoint));
    }
    assert.equal(checkpoints[0], checkpoints[1]);
    const weights = await Promise.all(runs.map((run) => loadTensors(path.join(run, checkpoints[0]), "weights")));
    assert.ok(Object.keys(weights[0]).length >= 10);
    for (const [name, tensor] of Object.entries(weights[0])) {
      assert.deepEqual(Array.from(tensor.dataSync()), Array.from(weights[1][name].dataSync()), `${name} differs between the two runs`);
    }
    const losses = runs.map((run) => readLog(path.join(run, "training-log.jsonl")).map((r) => (r.kind === "step" ? r.loss : r.valLoss)));
    assert.equal(losses[0].length >= 4, true);
    assert.deepEqual(losses[0], losses[1]);
  });

  test("npm run features fills the cache that training reads: training extracts nothing again", { skip: recipeMissing }, async () => {
    await initBackend();
    const dataRoot = smallFlickr8k({ train: 16, dev: 4, test: 4 });
    const featureDir = path.join(dataRoot, "features");
    const tsx = path.resolve(__dirname, "../node_modules/.bin/tsx");
    const script = path.resolve(__dirname, "../scripts/extract-features.ts");
    const args = ["--data", "flickr8k", "--data-root", dataRoot, "--feature-dir", featureDir, "--backbone", SHARED_V1_075, "--split", "all", "--no-progress", "--json"];
    const { stdout } = await promisify(execFile)(tsx, [script, ...args]);
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as { out: string; rows: number });
    assert.deepEqual(lines.map((l) => [path.relative(featureDir, l.out), l.rows]), [
      [path.join("mobilenet_v1_0.75_224", "train"), 16], [path.join("mobilenet_v1_0.75_224", "val"), 4], [path.join("mobilenet_v1_0.75_224", "test"), 4],
    ]);
    const cacheFiles = ["train", "val"].flatMap((split) => ["features.f16", "index.json"].map((f) => path.join(featureDir, "mobilenet_v1_0.75_224", split, f)));
    const before = cacheFiles.map((file) => fs.statSync(file).mtimeMs);
    const { encoder } = FLICKR8K_CONFIG;
    const local = encoder.kind === "pretrained" ? { ...encoder, backbone: { ...encoder.backbone, source: SHARED_V1_075 } } : encoder;
    const result = await train({ ...FLICKR8K_CONFIG, dataRoot, featureDir, runDir: path.join(dataRoot, "run"), encoder: local }, { maxSteps: 1, log: () => {} });
    result.model.dispose();
    assert.equal(result.state.step, 1);
    assert.deepEqual(cacheFiles.map((file) => fs.statSync(file).mtimeMs), before, "the caches were read, not written");
  });
});
