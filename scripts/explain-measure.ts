/**
 * npm run explain:measure -- [--run DIR] [--synthetic DIR] [--flickr8k DIR] [--pairs N]
 *
 * How well the Grad-CAM word maps (lib/explain/) point at what a word names, in figures:
 *
 * 1. Synthetic test scenes (the run's model, default runs/latest), where each object's cell of the
 *    3x3 placement grid is known. For every colour or shape word of a greedy caption that belongs
 *    to a mention "<colour> <shape>" naming exactly one object of the scene, correctly: the share
 *    of maps whose maximum lies in that object's cell, by word kind, against two chances (a cell
 *    at random: 1/9; an object of the scene at random: the mean of 1/objects). Then the binding
 *    errors ("a white triangle" for a white star and a red triangle): where the wrong pair's
 *    colour and shape words' maps peak. The same for occlusion sensitivity over the 3x3 cells
 *    (lib/explain/occlusion.ts), a check that needs no gradient.
 * 2. Flickr8k test photos, two side by side (one of a dog, one of people: the middle halves of
 *    each, so the model's square input holds both), captioned by the shipped model (its card's beam search): for
 *    each caption that says "dog", the share of the "dog" map's mass on the dog's half.
 * 3. Speed: ms per explained caption (Grad-CAM of every word, from the file) on this backend.
 *
 * Data that is not there is skipped, saying so. A benchmark: it prints figures, it asserts nothing.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/runtime/backend";
import { Captioner } from "../lib/inference/captioner";
import { SHIPPED_MODEL, readModelCard } from "../lib/inference/model-folder";
import { loadSplit } from "../lib/data/dataset";
import { COLORS, SHAPES, type Scene, type SceneObject } from "../lib/data/synthetic/scene";
import { gridCell } from "../lib/data/synthetic/sample-scene";
import { explainImage } from "../lib/explain/explain-image";
import { occlusionMaps } from "../lib/explain/occlusion";
import { transformImage } from "../lib/data/transforms";
import { massShare, type ImageMap } from "../lib/explain/image-grid";
import type { Caption } from "../lib/inference/greedy";

const { values: args } = parseArgs({
  options: {
    run: { type: "string", default: "runs/latest" },
    synthetic: { type: "string", default: "data/synthetic" },
    flickr8k: { type: "string", default: "../shared/flickr8k" },
    pairs: { type: "string", default: "100" },
  },
});

const pct = (x: number) => x.toFixed(3);

/**
 * Where a map peaks, as fractions (0..1) of the image's width and height: the centre of the cells
 * at its maximum (beyond the outer cell centres a map is flat, so the maximum can be a plateau).
 */
function peak(map: ImageMap): { x: number; y: number } {
  const [rows, cols] = map.grid;
  const max = map.values.reduce((m, v) => Math.max(m, v), 0);
  let [x, y, n] = [0, 0, 0];
  map.values.forEach((v, k) => {
    if (v < max) return;
    x += ((k % cols) + 0.5) / cols;
    y += (Math.floor(k / cols) + 0.5) / rows;
    n++;
  });
  return { x: x / n, y: y / n };
}

/** A cell of the scenes' 3x3 placement grid. */
type Cell = { row: number; column: number };
/** Where a word's map peaks, as a cell of the 3x3 grid (null: an empty map). */
type PeakCell = (wordIndex: number) => Cell | null;

const sameCell = (cell: Cell | null, object: SceneObject) => {
  const at = gridCell(object);
  return cell !== null && cell.row === at.row && cell.column === at.column;
};

/** Grad-CAM's peak cell, from its map over the image. */
const gradCamPeak = (maps: ImageMap[]): PeakCell => (t) => (maps[t].values.some((v) => v > 0) ? gridCell(peak(maps[t])) : null);

/** Occlusion's peak cell, from its map over the 3x3 grid itself. */
const occlusionPeak = (maps: Float32Array[]): PeakCell => (t) => {
  const best = maps[t].reduce((b, v, k) => (v > maps[t][b] ? k : b), 0);
  return maps[t][best] > 0 ? { row: Math.floor(best / 3), column: best % 3 } : null;
};

const isColour = (w: string) => (COLORS as readonly string[]).includes(w);
const isShape = (w: string) => (SHAPES as readonly string[]).includes(w); // singular only: a plural names several objects

/** Counts of hits by word kind, and of binding-error peaks, for one way of making maps. */
interface SyntheticTally {
  hits: Record<"colour" | "shape", { hit: number; total: number }>;
  objectChance: number[];
  binding: Record<"colour" | "shape", { onItsColour: number; onItsShape: number; elsewhere: number }>;
}

async function measureSynthetic(): Promise<void> {
  if (!fs.existsSync(args.run!) || !fs.existsSync(args.synthetic!)) {
    console.log(`synthetic: skipped (${args.run} or ${args.synthetic} not found: run \`npm start\` first)`);
    return;
  }
  const model = await Captioner.load(args.run!, undefined, "best");
  const test = await loadSplit(args.synthetic!, "test");
  const scenes = new Map((test.scenes ?? []).map((s) => [s.imageId, s]));
  const ids = test.index.images.map((i) => i.id).filter((id) => scenes.has(id));
  const files = ids.map((id) => test.index.imagePath(id));
  const captions = await model.captionFiles(files);
  const gradCam = emptyTally();
  const occlusion = emptyTally();
  const transform = model.transform(false);
  let ms = 0;
  for (const [i, file] of files.entries()) {
    const scene = scenes.get(ids[i])!;
    const start = performance.now();
    const { explanation, maps } = await explainImage(model, file, captions[i]);
    ms += performance.now() - start;
    const words = explanation.words.map((w) => w.word);
    countScene(gradCam, scene, words, gradCamPeak(maps));
    const pixels = tf.tensor4d(await transformImage(file, transform), [1, transform.crop, transform.crop, 3]);
    countScene(occlusion, scene, words, occlusionPeak(occlusionMaps(model, pixels, captions[i].tokens, [3, 3])));
    pixels.dispose();
  }
  model.dispose();

  console.log(`synthetic test scenes (${files.length}, model ${args.run}, greedy): map maximum in the named object's cell of the 3x3 grid`);
  for (const [method, tally] of [["Grad-CAM", gradCam], ["occlusion of each cell", occlusion]] as const) {
    const chanceObject = tally.objectChance.reduce((s, v) => s + v, 0) / Math.max(1, tally.objectChance.length);
    console.log(`  ${method}:`);
    for (const kind of ["colour", "shape"] as const) {
      const { hit, total } = tally.hits[kind];
      console.log(`    ${kind} words: ${pct(hit / total)} of ${total}   (chance: a random cell ${pct(1 / 9)}, a random object of the scene ${pct(chanceObject)})`);
    }
    console.log(`    binding errors (a colour and a shape of the scene, on different objects): where the wrong pair's maps peak`);
    for (const kind of ["colour", "shape"] as const) {
      const b = tally.binding[kind];
      const n = b.onItsColour + b.onItsShape + b.elsewhere;
      console.log(`      the ${kind} word (${n}): on the object of that colour ${pct(b.onItsColour / n)}, on the object of that shape ${pct(b.onItsShape / n)}, elsewhere ${pct(b.elsewhere / n)}`);
    }
  }
  console.log(`  Grad-CAM: ${(ms / files.length).toFixed(0)} ms per explained caption (small CNN, from the file)`);
}

function emptyTally(): SyntheticTally {
  return {
    hits: { colour: { hit: 0, total: 0 }, shape: { hit: 0, total: 0 } },
    objectChance: [],
    binding: { colour: { onItsColour: 0, onItsShape: 0, elsewhere: 0 }, shape: { onItsColour: 0, onItsShape: 0, elsewhere: 0 } },
  };
}

/** Adds one scene's caption to the tally (see the file comment). */
function countScene(tally: SyntheticTally, scene: Scene, words: string[], peakCell: PeakCell): void {
  words.forEach((colour, t) => {
    const shape = words[t + 1];
    if (!isColour(colour) || shape === undefined || !isShape(shape)) return;
    const named = scene.objects.filter((o) => o.color === colour && o.shape === shape);
    if (named.length === 1) {
      tally.objectChance.push(1 / scene.objects.length, 1 / scene.objects.length);
      for (const [kind, at] of [["colour", t], ["shape", t + 1]] as const) {
        tally.hits[kind].total++;
        if (sameCell(peakCell(at), named[0])) tally.hits[kind].hit++;
      }
      return;
    }
    const withColour = scene.objects.filter((o) => o.color === colour);
    const withShape = scene.objects.filter((o) => o.shape === shape);
    if (named.length > 0 || withColour.length === 0 || withShape.length === 0) return; // not a binding error
    for (const [kind, at] of [["colour", t], ["shape", t + 1]] as const) {
      const cell = peakCell(at);
      const on = (objects: SceneObject[]) => objects.some((o) => sameCell(cell, o));
      tally.binding[kind][on(withColour) ? "onItsColour" : on(withShape) ? "onItsShape" : "elsewhere"]++;
    }
  });
}

/** Flickr8k test photos whose five captions all say "dog", and photos of people with no animal in any caption. */
async function dogsAndPeople(root: string): Promise<{ dogs: string[]; people: string[] }> {
  const test = await loadSplit(root, "test", () => {});
  const dogs: string[] = [];
  const people: string[] = [];
  for (const image of test.index.images) {
    const refs = (test.index.captionsByImageId.get(image.id) ?? []).map((c) => c.caption.toLowerCase());
    const says = (re: RegExp) => refs.filter((r) => re.test(r)).length;
    if (refs.length >= 5 && says(/\bdogs?\b/) === refs.length) dogs.push(test.index.imagePath(image.id));
    else if (says(/\b(dog|dogs|puppy|animal|cat|horse|bird|cow|sheep)\b/) === 0 && says(/\b(man|men|woman|women|people|person|boy|girl|child|children)\b/) >= 4) {
      people.push(test.index.imagePath(image.id));
    }
  }
  return { dogs, people };
}

/** The middle half (by width) of a photo resized to 224x224: [224 rows, 112 cols, 3]. */
async function middleHalf(file: string): Promise<Buffer> {
  return sharp(file).rotate().resize(224, 224, { fit: "fill" }).extract({ left: 56, top: 0, width: 112, height: 224 }).removeAlpha().raw().toBuffer();
}

async function measureDogs(): Promise<void> {
  if (!fs.existsSync(args.flickr8k!)) {
    console.log(`dog composites: skipped (${args.flickr8k} not found)`);
    return;
  }
  const { dogs, people } = await dogsAndPeople(args.flickr8k!);
  const pairs = Math.min(Number(args.pairs), dogs.length, people.length);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dog-composites-"));
  const model = await Captioner.load(SHIPPED_MODEL);
  const card = readModelCard(SHIPPED_MODEL);
  const shares: number[] = [];
  const times: number[] = [];
  let words = 0;
  let saidDog = 0;
  for (let k = 0; k < pairs; k++) {
    const dogLeft = k % 2 === 0; // half the pairs each way
    const [left, right] = dogLeft ? [dogs[k], people[k]] : [people[k], dogs[k]];
    const file = path.join(dir, `pair-${k}.png`);
    await sharp({ create: { width: 224, height: 224, channels: 3, background: "black" } })
      .composite([
        { input: await middleHalf(left), raw: { width: 112, height: 224, channels: 3 }, left: 0, top: 0 },
        { input: await middleHalf(right), raw: { width: 112, height: 224, channels: 3 }, left: 112, top: 0 },
      ])
      .png()
      .toFile(file);
    const [caption] = await model.captionFiles([file], { beamSize: card.beam.size, alpha: card.beam.alpha });
    const t = performance.now();
    const { explanation, maps } = await explainImage(model, file, caption as Caption);
    times.push(performance.now() - t);
    words += explanation.words.length;
    const at = explanation.words.findIndex((w) => w.word === "dog" || w.word === "dogs");
    if (at < 0) continue;
    saidDog++;
    shares.push(dogLeft ? massShare(maps[at], 0, 0.5) : massShare(maps[at], 0.5, 1));
  }
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
  const mostlyOnDog = shares.filter((s) => s > 0.5).length;
  const meanShare = shares.reduce((s, v) => s + v, 0) / Math.max(1, shares.length);
  console.log(`dog composites (${pairs} Flickr8k test pairs, dog half left in half of them; shipped model, beam ${card.beam.size}):`);
  console.log(`  captions that say "dog": ${saidDog}`);
  console.log(`  of those, most of the "dog" map's mass on the dog's half: ${pct(mostlyOnDog / Math.max(1, saidDog))} (${mostlyOnDog}); mean share on the dog's half ${pct(meanShare)}`);
  const sorted = [...times].sort((a, b) => a - b);
  const meanMs = times.reduce((s, v) => s + v, 0) / times.length;
  console.log(`  speed: ${meanMs.toFixed(0)} ms per explained caption (median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)}), ` +
    `${(meanMs / (words / times.length)).toFixed(0)} ms per word, ${(words / times.length).toFixed(1)} words per caption (MobileNet V1 0.75, from the file)`);
}

async function main(): Promise<void> {
  const backend = await initBackend({ log: () => {} });
  console.log(`backend: ${backend.name}`);
  await measureSynthetic();
  await measureDogs();
}

main().catch((error: Error) => {
  console.error(`explain:measure: ${error.message}`);
  process.exitCode = 1;
});
