/**
 * COCO caption files: the real sample from ../shared, the default layout, and every
 * kind of malformed file with the error message it must give.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cocoPaths, loadCaptions, loadTestImageInfo, parseCaptions } from "../lib/data/coco";

const SHARED = path.resolve(__dirname, "../../shared");
const SAMPLE = path.join(SHARED, "coco-sample");
const SAMPLE_FILE = path.join(SAMPLE, "annotations/captions_val2014_sample.json");
const SAMPLE_IMAGES = path.join(SAMPLE, "images/val2014");
const sampleMissing = fs.existsSync(SAMPLE_FILE) ? false : "../shared/coco-sample not found";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "coco-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Writes `content` (an object, or raw text) to a temporary captions file and returns its path. */
function writeFile(name: string, content: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

/** A small valid captions file: two images, two captions each. */
function validCaptions() {
  return {
    images: [
      { id: 1, file_name: "a.jpg", width: 640, height: 480 },
      { id: 2, file_name: "b.jpg", width: 500, height: 375, coco_url: "http://example.org/b.jpg" },
    ],
    annotations: [
      { id: 10, image_id: 1, caption: "A dog on a bed." },
      { id: 11, image_id: 2, caption: "A cat on a mat." },
      { id: 12, image_id: 1, caption: "A sleeping dog." },
      { id: 13, image_id: 2, caption: "A grey cat." },
    ],
  };
}

/** Writes a broken variant of the valid file and expects loadCaptions to reject with exactly `message`. */
async function expectError(
  name: string,
  edit: (json: ReturnType<typeof validCaptions>) => unknown,
  message: string,
): Promise<void> {
  const file = writeFile(name, edit(validCaptions()));
  await assert.rejects(loadCaptions(file, "img"), (err: Error) => {
    assert.equal(err.message, `${file}: ${message}`);
    return true;
  });
}

test("cocoPaths gives the original layout under data/cocoapi, or under any root", () => {
  const paths = cocoPaths();
  assert.equal(paths.annotations.train, path.join("data/cocoapi/annotations/captions_train2014.json"));
  assert.equal(paths.annotations.val, path.join("data/cocoapi/annotations/captions_val2014.json"));
  assert.equal(paths.annotations.test, path.join("data/cocoapi/annotations/image_info_test2014.json"));
  assert.equal(paths.images.train, path.join("data/cocoapi/images/train2014"));
  assert.equal(paths.images.test, path.join("data/cocoapi/images/test2014"));
  const synthetic = cocoPaths("/data/synthetic");
  assert.equal(synthetic.testCaptions, "/data/synthetic/annotations/captions_test2014.json");
  assert.equal(synthetic.images.val, "/data/synthetic/images/val2014");
});

test("reads the real COCO sample: 60 images, 5 captions each, every image file present", { skip: sampleMissing }, async () => {
  const coco = await loadCaptions(SAMPLE_FILE, SAMPLE_IMAGES);
  assert.equal(coco.images.length, 60);
  assert.equal(coco.captions.length, 300);
  assert.equal(coco.imagesById.size, 60);
  for (const image of coco.images) {
    const captions = coco.captionsByImageId.get(image.id) ?? [];
    assert.equal(captions.length, 5, `image ${image.id}`);
    assert.ok(captions.every((c) => c.image_id === image.id && c.caption.trim().length > 0));
    assert.ok(fs.existsSync(coco.imagePath(image.id)), coco.imagePath(image.id));
  }
  // The grayscale image named in ../shared/coco-sample/README.md.
  assert.equal(coco.imagePath(431848), path.join(SAMPLE_IMAGES, "COCO_val2014_000000431848.jpg"));
  assert.equal(coco.imagesById.get(431848)?.file_name, "COCO_val2014_000000431848.jpg");
});

test("reads an image-info file (test split: images, no captions)", { skip: sampleMissing }, async () => {
  const { images, licenses } = JSON.parse(fs.readFileSync(SAMPLE_FILE, "utf8"));
  const file = writeFile("image_info_test2014.json", { info: {}, licenses, images });
  const info = await loadTestImageInfo(file, SAMPLE_IMAGES);
  assert.equal(info.images.length, 60);
  assert.equal(info.imagePath(images[3].id), path.join(SAMPLE_IMAGES, images[3].file_name));
  assert.equal("captions" in info, false);
});

test("indexes captions by image, in file order, with an empty list for an image without captions", () => {
  const json = validCaptions();
  json.images.push({ id: 3, file_name: "c.jpg", width: 1, height: 1 });
  const coco = parseCaptions(JSON.stringify(json), "x.json", "/images");
  assert.deepEqual(coco.captionsByImageId.get(1)?.map((c) => c.id), [10, 12]);
  assert.deepEqual(coco.captionsByImageId.get(2)?.map((c) => c.caption), ["A cat on a mat.", "A grey cat."]);
  assert.deepEqual(coco.captionsByImageId.get(3), []);
  assert.equal(coco.imagePath(2), path.join("/images", "b.jpg"));
  assert.throws(() => coco.imagePath(99), { message: "x.json: no image with id 99" });
});

test("a missing file is an error naming it", async () => {
  const file = path.join(tmp, "does-not-exist.json");
  await assert.rejects(loadCaptions(file, "img"), (err: Error) => {
    assert.match(err.message, /^.*does-not-exist\.json: cannot read the annotation file: ENOENT/);
    return true;
  });
});

test("invalid JSON is an error naming the file and the parse error", async () => {
  const file = writeFile("captions_bad.json", '{"images": [], "annotations": [');
  await assert.rejects(loadCaptions(file, "img"), (err: Error) => {
    assert.ok(err.message.startsWith(`${file}: invalid JSON: `), err.message);
    assert.match(err.message, /JSON/);
    return true;
  });
});

test("a file that is not an object, or lacks its lists, is an error", async () => {
  await expectError("top-array.json", () => [], "top level: must be a JSON object (got [])");
  await expectError("no-images.json", (j) => ({ annotations: j.annotations }), 'top level: "images" must be an array (got nothing)');
  await expectError("no-annotations.json", (j) => ({ images: j.images }), 'top level: "annotations" must be an array (got nothing)');
  await expectError("images-object.json", (j) => ({ ...j, images: {} }), 'top level: "images" must be an array (got {})');
});

test("a missing field names the entry (index and id) and the field", async () => {
  await expectError(
    "captions_train2014.json",
    (j) => {
      delete (j.annotations[2] as Partial<(typeof j.annotations)[number]>).caption;
      return j;
    },
    'annotations[2] (id 12): "caption" must be a non-empty string (missing)',
  );
  await expectError(
    "no-file-name.json",
    (j) => {
      delete (j.images[1] as Partial<(typeof j.images)[number]>).file_name;
      return j;
    },
    'images[1] (id 2): "file_name" must be a non-empty string (missing)',
  );
  await expectError(
    "no-id.json",
    (j) => {
      delete (j.annotations[0] as Partial<(typeof j.annotations)[number]>).id;
      return j;
    },
    'annotations[0]: "id" must be a non-negative integer (missing)',
  );
});

test("a field of the wrong type names the entry, the field and the value", async () => {
  const cases: [string, (j: any) => void, string][] = [
    ["caption-number", (j) => (j.annotations[1].caption = 42), 'annotations[1] (id 11): "caption" must be a non-empty string (got 42)'],
    ["caption-blank", (j) => (j.annotations[3].caption = "  \n"), 'annotations[3] (id 13): "caption" must be a non-empty string (got "  \\n")'],
    ["image-id-string", (j) => (j.annotations[0].image_id = "1"), 'annotations[0] (id 10): "image_id" must be a non-negative integer (got "1")'],
    ["id-float", (j) => (j.images[0].id = 1.5), 'images[0]: "id" must be a non-negative integer (got 1.5)'],
    ["width-negative", (j) => (j.images[1].width = -640), 'images[1] (id 2): "width" must be a positive integer (got -640)'],
    ["height-null", (j) => (j.images[0].height = null), 'images[0] (id 1): "height" must be a positive integer (got null)'],
    ["entry-null", (j) => (j.annotations[2] = null), "annotations[2]: must be an object (got null)"],
    ["entry-string", (j) => (j.images[0] = "a.jpg"), 'images[0]: must be an object (got "a.jpg")'],
  ];
  for (const [name, edit, message] of cases) {
    await expectError(`${name}.json`, (j) => (edit(j), j), message);
  }
});

test("a caption of an image that is not in the file is an error", async () => {
  await expectError(
    "dangling.json",
    (j) => ((j.annotations[3].image_id = 7), j),
    'annotations[3] (id 13): "image_id" 7 is not the id of any entry of "images"',
  );
});

test("duplicate image ids and duplicate caption ids are errors naming both entries", async () => {
  await expectError("dup-image.json", (j) => ((j.images[1].id = 1), j), "images[1] (id 1): duplicate id, already used by images[0]");
  await expectError(
    "dup-caption.json",
    (j) => ((j.annotations[3].id = 11), j),
    "annotations[3] (id 11): duplicate id, already used by annotations[1]",
  );
});

test("an image-info file is checked the same way", async () => {
  const file = writeFile("image_info_bad.json", { images: [{ id: 5, file_name: "", width: 1, height: 1 }] });
  await assert.rejects(loadTestImageInfo(file, "img"), {
    message: `${file}: images[0] (id 5): "file_name" must be a non-empty string (got "")`,
  });
});
