/**
 * Truth to the scene on hand-made scenes: exact precision and recall, plural counting,
 * the background colour ignored, micro-averaging, and the blind baseline.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  blindCaption,
  matchScene,
  MISTAKE_KINDS,
  mistakeSummary,
  normalizeCaption,
  parseMentions,
  sceneMistakes,
  sceneScores,
  sceneText,
  scoresByObjectCount,
} from "../lib/evaluation/metrics/scene-score";
import { Random } from "../lib/data/random";
import { describeScene } from "../lib/data/synthetic/describe";
import { sampleScene } from "../lib/data/synthetic/sample-scene";
import type { Color, Scene, Shape, Size } from "../lib/data/synthetic/scene";

/** A scene from "size colour shape" strings; positions do not matter to the scorer. */
function scene(imageId: number, background: Color, objects: string[]): Scene {
  return {
    imageId,
    background,
    objects: objects.map((text, i) => {
      const [size, color, shape] = text.split(" ") as [Size, Color, Shape];
      return { size, color, shape, x: 0.2 + 0.3 * (i % 3), y: 0.5 };
    }),
  };
}

test("a caption naming exactly the scene's objects: precision 1, recall 1", () => {
  const s = scene(1, "green", ["small red circle", "large blue square"]);
  const m = matchScene("a small red circle to the left of a blue square on a green background", s);
  assert.deepEqual(
    { named: m.named, present: m.present, matched: m.matched, precision: m.precision, recall: m.recall },
    { named: 2, present: 2, matched: 2, precision: 1, recall: 1 },
  );
});

test("the background colour is not an object", () => {
  // Green is the background and no green object exists: naming the background costs nothing.
  const s = scene(2, "green", ["large yellow triangle"]);
  assert.deepEqual(parseMentions("a green background with a large yellow triangle"), [{ color: "yellow", shape: "triangle" }]);
  const m = matchScene("a yellow triangle on a green background", s);
  assert.equal(m.named, 1);
  assert.equal(m.precision, 1);
  assert.equal(m.recall, 1);
  // A colour not right before a shape word names nothing either.
  assert.deepEqual(parseMentions("two shapes on a purple background: nothing red"), []);
});

test("plurals count as many objects as their count word says", () => {
  assert.equal(parseMentions("two red circles and a green star").length, 3);
  assert.equal(parseMentions("three large blue squares").length, 3);
  assert.equal(parseMentions("red circles").length, 2, "a plural without a count names at least two");
  const s = scene(3, "white", ["small red circle", "large red circle", "small blue square"]);
  const m = matchScene("two red circles and a green star", s);
  // Named: red circle x2, green star; present: red circle x2, blue square.
  assert.equal(m.named, 3);
  assert.equal(m.matched, 2);
  assert.equal(m.precision, 2 / 3);
  assert.equal(m.recall, 2 / 3);
});

test("multiset matching: naming one object twice matches it once", () => {
  const s = scene(4, "black", ["small orange star"]);
  const m = matchScene("two orange stars", s);
  assert.equal(m.named, 2);
  assert.equal(m.matched, 1);
  assert.equal(m.precision, 0.5);
  assert.equal(m.recall, 1);
});

test("'the <colour> <shape>' that repeats an object already named is not a new object", () => {
  assert.equal(parseMentions("a red circle above a blue star. the red circle is large").length, 2);
  assert.equal(parseMentions("the red circle is above the blue star").length, 2, "a first mention with 'the' counts");
});

test("a caption that names nothing: precision 0 by convention, recall 0", () => {
  const m = matchScene("an image of some shapes", scene(5, "red", ["small white square"]));
  assert.deepEqual([m.named, m.precision, m.recall], [0, 0, 0]);
});

test("scores over images are micro-averages, and every prediction needs its scene", () => {
  const scenes = [
    scene(10, "green", ["small red circle", "small blue square", "large white star"]),
    scene(11, "blue", ["large purple triangle"]),
    scene(12, "black", ["small red circle"]), // no prediction: left out
  ];
  const predictions = new Map([
    [10, "a red circle on a green background"], // named 1, matched 1, present 3
    [11, "a purple triangle, a red square and two white stars"], // named 4, matched 1, present 1
  ]);
  const scores = sceneScores(predictions, scenes);
  assert.deepEqual(
    { named: scores.named, present: scores.present, matched: scores.matched, images: scores.images },
    { named: 5, present: 4, matched: 2, images: 2 },
  );
  assert.equal(scores.precision, 2 / 5);
  assert.equal(scores.recall, 2 / 4);
  assert.deepEqual(scores.perImage.map((m) => m.imageId), [10, 11]);
  assert.throws(() => sceneScores(new Map([[99, "a red circle"]]), scenes), /image 99 has a caption but no scene/);
});

test("blind baseline: the most frequent training caption, given to every image", () => {
  const training = [
    "A red circle on a green background.",
    "a blue square",
    "a red circle on a  green background",
    "A blue square.",
    "a white star",
  ];
  assert.equal(normalizeCaption(" A Red circle.  "), "a red circle");
  // Two captions are seen twice each: the tie goes to the one seen first.
  assert.equal(blindCaption(training), "a red circle on a green background");
  assert.throws(() => blindCaption([]), /no training captions/);

  const scenes = [scene(1, "green", ["small red circle"]), scene(2, "yellow", ["small blue square", "large white star"])];
  const blind = sceneScores(new Map(scenes.map((s) => [s.imageId, blindCaption(training)])), scenes);
  assert.equal(blind.precision, 1 / 2);
  assert.equal(blind.recall, 1 / 3);
  const seeing = sceneScores(new Map([[1, "a red circle"], [2, "a blue square and a white star"]]), scenes);
  assert.ok(seeing.precision > blind.precision && seeing.recall > blind.recall, "a caption that looks beats the blind one");
});

test("the generator's own captions are true to their scenes (precision 1) and name most objects", () => {
  const rng = new Random(7);
  const predictions = new Map<number, string>();
  const scenes: Scene[] = [];
  for (let imageId = 0; imageId < 300; imageId++) {
    const s = sampleScene(rng, imageId);
    scenes.push(s);
    for (const [k, caption] of describeScene(s, rng).entries()) {
      const m = matchScene(caption, s);
      assert.equal(m.precision, 1, `scene ${imageId} caption ${k}: "${caption}" names an object not in the scene`);
    }
    predictions.set(imageId, describeScene(s, rng)[0]);
  }
  const scores = sceneScores(predictions, scenes);
  assert.equal(scores.precision, 1);
  assert.ok(scores.recall > 0.8, `recall of reference captions: ${scores.recall}`);
});

test("sceneMistakes sorts each wrong object into one kind, and counts the objects left unnamed", () => {
  const s = scene(7, "green", ["large red triangle", "small white star", "small blue circle"]);
  // white triangle: colour and shape both there, on other objects; red square: the colour only;
  // yellow star: the shape only; purple square: neither; two blue circles: one more than there is.
  const m = sceneMistakes("a white triangle, a red square, a yellow star, a purple square and two blue circles", s);
  assert.deepEqual(
    { ...m },
    { imageId: 7, objects: 3, named: 6, matched: 1, extra: 1, swapped: 1, wrongShape: 1, wrongColor: 1, wrongBoth: 1, missed: 2 },
  );
  // It agrees with matchScene on what is matched.
  const caption = "a white triangle, a red square, a yellow star, a purple square and two blue circles";
  assert.equal(matchScene(caption, s).matched, m.matched);
  const right = sceneMistakes("a red triangle and a white star", s);
  assert.deepEqual([right.matched, right.missed, MISTAKE_KINDS.reduce((n, k) => n + right[k], 0)], [2, 1, 0]);
});

test("scoresByObjectCount and mistakeSummary report the run's own numbers", () => {
  const one = scene(1, "red", ["small blue circle"]);
  const two = scene(2, "red", ["small blue circle", "large white star"]);
  const mistakes = [
    sceneMistakes("a blue circle", one), // 1 of 1 right
    sceneMistakes("a blue star and a white circle", two), // 2 named, both swapped
  ];
  const groups = scoresByObjectCount(mistakes);
  assert.deepEqual(groups, [
    { objects: 1, images: 1, precision: 1, recall: 1 },
    { objects: 2, images: 1, precision: 0, recall: 0 },
  ]);
  const summary = mistakeSummary(mistakes);
  assert.match(summary, /1 object: precision 1\.00, recall 1\.00 \(1 images\); 2 objects: precision 0\.00, recall 0\.00/);
  assert.match(summary, /Of the 2 objects named that are not in their picture, 2 \(100%\) pair a colour and a shape/);
  assert.match(summary, /2 of the 3 objects in the pictures go unnamed/);
  assert.equal(sceneText(two), "small blue circle, large white star on red");
});
