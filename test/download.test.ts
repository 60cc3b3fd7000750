/**
 * The COCO downloader against a local HTTP server (test/helpers/file-server.ts) serving small
 * zips in COCO's layout: resume after a dropped connection, retry with back-off, a server
 * that ignores Range, size and checksum errors, corrupt and unsafe archives, the free-space
 * check, re-runs that make no request, part selection, and the command line.
 */
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { ZipFile } from "yazl";
import { downloadFile, type DownloadEvent } from "../lib/io/download";
import { extractZip } from "../lib/io/unzip";
import { diskNeed, downloadCoco, formatBytes, selectParts, type CocoEvent, type PartSpec } from "../lib/io/coco-download";
import { parseCliArgs } from "../scripts/download-coco";
import { FileServer } from "./helpers/file-server";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "download-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
/** A fresh empty folder for one test. */
const freshDir = () => fs.mkdtempSync(path.join(tmp, `t${dirCount++}-`));

/** Fast retries: the tests check the back-off's shape, not its real length. */
const FAST = { backoffMs: 2, timeoutMs: 5000 };

/** Builds a zip in memory; entries are stored (not deflated), so their bytes appear verbatim. */
async function makeZip(entries: Record<string, Buffer | string>): Promise<Buffer> {
  const zip = new ZipFile();
  for (const [name, data] of Object.entries(entries)) {
    zip.addBuffer(Buffer.from(data), name, { compress: false });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const randomBytes = (n: number, seed: number) => {
  // Deterministic "image" bytes: a SHA-256 chain, so a rerun builds the same archives.
  const out = Buffer.alloc(n);
  let block = crypto.createHash("sha256").update(String(seed)).digest();
  for (let i = 0; i < n; i += block.length) {
    block.copy(out, i);
    block = crypto.createHash("sha256").update(block).digest();
  }
  return out;
};

const sha256 = (data: Buffer) => crypto.createHash("sha256").update(data).digest("hex");

/** The contents of the small COCO: what each zip holds, by URL path. */
const CONTENTS: Record<string, Record<string, Buffer | string>> = {
  "/annotations/annotations_trainval2014.zip": {
    "annotations/captions_train2014.json": JSON.stringify({ images: [], annotations: [] }),
    "annotations/captions_val2014.json": JSON.stringify({ images: [{ id: 1 }], annotations: [] }),
  },
  "/annotations/image_info_test2014.zip": {
    "annotations/image_info_test2014.json": JSON.stringify({ images: [{ id: 2 }] }),
  },
  "/zips/train2014.zip": {
    "train2014/COCO_train2014_000000000009.jpg": randomBytes(30_000, 9),
    "train2014/COCO_train2014_000000000025.jpg": randomBytes(20_000, 25),
  },
  "/zips/val2014.zip": {
    "val2014/COCO_val2014_000000000042.jpg": randomBytes(25_000, 42),
    "val2014/COCO_val2014_000000000073.jpg": randomBytes(15_000, 73),
  },
  "/zips/test2014.zip": {
    "test2014/COCO_test2014_000000000001.jpg": randomBytes(12_000, 1),
  },
};

const zips = new Map<string, Buffer>();
let server: FileServer;

before(async () => {
  for (const [urlPath, entries] of Object.entries(CONTENTS)) zips.set(urlPath, await makeZip(entries));
  server = await FileServer.start();
});
after(() => server.close());
beforeEach(() => {
  server.reset();
  for (const [urlPath, body] of zips) server.files.set(urlPath, { body });
});

/** A manifest of the small COCO, shaped like COCO_2014; the annotations zip has a SHA-256, the rest not. */
function smallManifest(): PartSpec[] {
  const spec = (urlPath: string, extractTo: string, topDir: string) => {
    const body = server.files.get(urlPath)!.body;
    const extractedSize = Object.values(CONTENTS[urlPath]).reduce((sum, data) => sum + Buffer.from(data).length, 0);
    const sha = urlPath.includes("trainval") ? sha256(body) : undefined;
    return { path: urlPath.slice(1), size: body.length, sha256: sha, extractTo, topDir, extractedSize };
  };
  return [
    {
      name: "annotations",
      zips: [
        spec("/annotations/annotations_trainval2014.zip", ".", "annotations"),
        spec("/annotations/image_info_test2014.zip", ".", "annotations"),
      ],
    },
    { name: "val", zips: [spec("/zips/val2014.zip", "images", "val2014")] },
    { name: "test", zips: [spec("/zips/test2014.zip", "images", "test2014")] },
    { name: "train", zips: [spec("/zips/train2014.zip", "images", "train2014")] },
  ];
}

/** Every file of the small COCO that `parts` put under `root`, with the bytes it must hold. */
function expectedFiles(root: string, parts: string[]): [string, Buffer][] {
  const zipOf = { annotations: ["/annotations/annotations_trainval2014.zip", "/annotations/image_info_test2014.zip"], val: ["/zips/val2014.zip"], test: ["/zips/test2014.zip"], train: ["/zips/train2014.zip"] } as Record<string, string[]>;
  return parts.flatMap((part) =>
    zipOf[part].flatMap((urlPath) =>
      Object.entries(CONTENTS[urlPath]).map(([name, data]): [string, Buffer] => {
        const dir = name.startsWith("annotations/") ? root : path.join(root, "images");
        return [path.join(dir, name), Buffer.from(data)];
      }),
    ),
  );
}

describe("downloadFile", () => {
  const BIG = "/big.bin";
  const body = randomBytes(300_000, 7);

  test("resumes with Range after the connection drops mid-file, and the file is byte-identical", async () => {
    server.files.set(BIG, { body, fault: { dropAfter: 100_000 } });
    const dest = path.join(freshDir(), "big.bin");
    const events: DownloadEvent[] = [];
    const result = await downloadFile(server.url + "big.bin", dest, { size: body.length, ...FAST, onEvent: (e) => events.push(e) });

    assert.equal(result, "downloaded");
    assert.ok(fs.readFileSync(dest).equals(body), "the downloaded file differs from the served one");
    const [first, second] = server.requestsFor(BIG);
    assert.equal(server.requestsFor(BIG).length, 2);
    assert.equal(first.range, undefined);
    const offset = Number(/^bytes=(\d+)-$/.exec(second.range ?? "")?.[1]);
    assert.ok(offset > 0 && offset <= 100_000, `second request should resume mid-file, asked for ${second.range}`);
    assert.ok(second.ifRange, "the resumed request must carry If-Range");
    assert.equal(second.status, 206);
    assert.deepEqual(events.filter((e) => e.type === "start").map((e) => e.type === "start" && e.received), [0, offset]);
    assert.ok(!fs.existsSync(`${dest}.part`) && !fs.existsSync(`${dest}.part.json`), ".part files must be gone");
  });

  test("retries a 503 with exponential back-off, then succeeds", async () => {
    server.files.set(BIG, { body, fault: { failTimes: 3 } });
    const dest = path.join(freshDir(), "big.bin");
    const delays: number[] = [];
    await downloadFile(server.url + "big.bin", dest, { ...FAST, onEvent: (e) => e.type === "retry" && delays.push(e.delayMs) });
    assert.deepEqual(delays, [2, 4, 8]);
    assert.deepEqual(server.requestsFor(BIG).map((r) => r.status), [503, 503, 503, 200]);
    assert.ok(fs.readFileSync(dest).equals(body));
  });

  test("gives up after the last retry with an error naming the file", async () => {
    server.files.set(BIG, { body, fault: { failTimes: 100 } });
    const dest = path.join(freshDir(), "big.bin");
    await assert.rejects(downloadFile(server.url + "big.bin", dest, { retries: 2, ...FAST }), /^DownloadError: big\.bin: HTTP 503.*gave up after 3 attempts/);
    assert.equal(server.requestsFor(BIG).length, 3);
    assert.ok(!fs.existsSync(dest));
  });

  test("a 404 is not retried", async () => {
    const dest = path.join(freshDir(), "missing.bin");
    await assert.rejects(downloadFile(server.url + "missing.bin", dest, FAST), /missing\.bin: HTTP 404/);
    assert.equal(server.requestsFor("/missing.bin").length, 1);
  });

  test("restarts from zero when the server ignores Range", async () => {
    server.files.set(BIG, { body, fault: { dropAfter: 100_000, ignoreRange: true } });
    const dest = path.join(freshDir(), "big.bin");
    const events: DownloadEvent[] = [];
    await downloadFile(server.url + "big.bin", dest, { size: body.length, ...FAST, onEvent: (e) => events.push(e) });
    const [, second] = server.requestsFor(BIG);
    assert.match(second.range ?? "", /^bytes=\d+-$/, "the downloader should still ask for the rest");
    assert.equal(second.status, 200);
    assert.ok(events.some((e) => e.type === "restart"), "a restart must be reported");
    assert.ok(fs.readFileSync(dest).equals(body), "a restart must not append the whole file to the partial one");
  });

  test("a .part of an older version of the file is replaced (If-Range with the old ETag)", async () => {
    server.files.set(BIG, { body });
    const dest = path.join(freshDir(), "big.bin");
    fs.writeFileSync(`${dest}.part`, randomBytes(50_000, 999));
    fs.writeFileSync(`${dest}.part.json`, JSON.stringify({ url: server.url + "big.bin", etag: '"old-version"' }));
    const events: DownloadEvent[] = [];
    await downloadFile(server.url + "big.bin", dest, { size: body.length, ...FAST, onEvent: (e) => events.push(e) });
    const [request] = server.requestsFor(BIG);
    assert.equal(request.range, "bytes=50000-");
    assert.equal(request.ifRange, '"old-version"');
    assert.equal(request.status, 200);
    assert.ok(events.some((e) => e.type === "restart"));
    assert.ok(fs.readFileSync(dest).equals(body));
  });

  test("a .part whose origin is unknown (no validators saved) is discarded, not resumed", async () => {
    server.files.set(BIG, { body });
    const dest = path.join(freshDir(), "big.bin");
    fs.writeFileSync(`${dest}.part`, randomBytes(50_000, 999));
    await downloadFile(server.url + "big.bin", dest, { size: body.length, ...FAST });
    assert.equal(server.requestsFor(BIG)[0].range, undefined);
    assert.ok(fs.readFileSync(dest).equals(body));
  });

  test("a size that differs from the expected one is a clear error, not retried", async () => {
    server.files.set(BIG, { body });
    const dest = path.join(freshDir(), "big.bin");
    await assert.rejects(
      downloadFile(server.url + "big.bin", dest, { size: body.length + 1, ...FAST }),
      new RegExp(`big\\.bin: the server sends ${body.length} bytes but ${body.length + 1} are expected`),
    );
    assert.equal(server.requestsFor(BIG).length, 1);
    assert.ok(!fs.existsSync(dest));
  });

  test("a wrong SHA-256 is an error and the bad download is deleted", async () => {
    server.files.set(BIG, { body });
    const dest = path.join(freshDir(), "big.bin");
    await assert.rejects(downloadFile(server.url + "big.bin", dest, { sha256: "0".repeat(64), ...FAST }), /big\.bin: SHA-256 is [0-9a-f]{64} but 0{64} is expected/);
    assert.ok(!fs.existsSync(dest) && !fs.existsSync(`${dest}.part`));
  });

  test("a matching SHA-256 passes, and a second call makes no request", async () => {
    server.files.set(BIG, { body });
    const dest = path.join(freshDir(), "big.bin");
    const options = { size: body.length, sha256: sha256(body), ...FAST };
    assert.equal(await downloadFile(server.url + "big.bin", dest, options), "downloaded");
    assert.equal(await downloadFile(server.url + "big.bin", dest, options), "skipped");
    assert.equal(server.requestsFor(BIG).length, 1);
  });
});

describe("extractZip", () => {
  test("refuses an entry that would escape the destination (zip slip)", async () => {
    const dir = freshDir();
    // yazl refuses to write "../" names, so write a harmless name and patch it in place.
    const zip = (await makeZip({ "XX/evil.txt": "owned" })).toString("latin1").replaceAll("XX/evil.txt", "../evil.txt");
    const zipPath = path.join(dir, "evil.zip");
    fs.writeFileSync(zipPath, Buffer.from(zip, "latin1"));
    const dest = path.join(dir, "out");
    await assert.rejects(extractZip(zipPath, dest), /^Error: evil\.zip is corrupt or unsafe: .*\.\.\/evil\.txt/);
    assert.ok(!fs.existsSync(path.join(dir, "evil.txt")), "nothing may be written outside the destination");
  });

  test("a file that is not a zip gets an error naming it", async () => {
    const zipPath = path.join(freshDir(), "val2014.zip");
    fs.writeFileSync(zipPath, "<html>Access denied</html>");
    await assert.rejects(extractZip(zipPath, path.dirname(zipPath)), /val2014\.zip is not a readable zip archive/);
  });

  test("refuses entries outside the expected top-level folder", async () => {
    const zipPath = path.join(freshDir(), "val2014.zip");
    fs.writeFileSync(zipPath, await makeZip({ "val2014/a.jpg": "a", "b.jpg": "b" }));
    await assert.rejects(extractZip(zipPath, path.dirname(zipPath), { topDir: "val2014" }), /val2014\.zip: entry b\.jpg is not inside the expected folder val2014\//);
  });
});

describe("downloadCoco", () => {
  test("fetches every part into the COCO layout; a re-run makes no request", async () => {
    const root = freshDir();
    const manifest = smallManifest();
    const events: CocoEvent[] = [];
    const first = await downloadCoco({ root, baseUrl: server.url, manifest, ...FAST, onEvent: (e) => events.push(e) });

    assert.deepEqual(first, { fetched: ["annotations", "val", "test", "train"], skipped: [] });
    for (const [file, data] of expectedFiles(root, ["annotations", "val", "test", "train"])) {
      assert.ok(fs.readFileSync(file).equals(data), `${file} differs from the archive's entry`);
    }
    assert.ok(fs.existsSync(path.join(root, "annotations/captions_val2014.json")));
    assert.ok(fs.existsSync(path.join(root, "images/val2014/COCO_val2014_000000000042.jpg")));
    assert.deepEqual(fs.readdirSync(path.join(root, "downloads")).sort(), ["done-annotations.json", "done-test.json", "done-train.json", "done-val.json"], "zips are deleted after extraction");
    assert.equal(server.requests.length, 5);
    const extracts = events.filter((e) => e.type === "extract");
    assert.ok(extracts.some((e) => e.type === "extract" && e.file === "train2014.zip" && e.done === 2 && e.total === 2));

    const again = await downloadCoco({ root, baseUrl: server.url, manifest, ...FAST });
    assert.deepEqual(again, { fetched: [], skipped: ["annotations", "val", "test", "train"] });
    assert.equal(server.requests.length, 5, "a re-run must not make any request");
  });

  test("--parts fetches only the chosen parts", async () => {
    const root = freshDir();
    const manifest = smallManifest();
    await downloadCoco({ root, baseUrl: server.url, manifest, parts: ["val", "annotations"], ...FAST });
    assert.deepEqual(server.requests.map((r) => r.path).sort(), ["/annotations/annotations_trainval2014.zip", "/annotations/image_info_test2014.zip", "/zips/val2014.zip"]);
    assert.ok(!fs.existsSync(path.join(root, "images/train2014")));
    assert.ok(!fs.existsSync(path.join(root, "images/test2014")));

    server.requests.length = 0;
    const result = await downloadCoco({ root, baseUrl: server.url, manifest, parts: ["annotations", "train"], ...FAST });
    assert.deepEqual(result, { fetched: ["train"], skipped: ["annotations"] });
    assert.deepEqual(server.requests.map((r) => r.path), ["/zips/train2014.zip"]);
  });

  test("keepZips keeps the verified zips next to the markers", async () => {
    const root = freshDir();
    await downloadCoco({ root, baseUrl: server.url, manifest: smallManifest(), parts: ["test"], keepZips: true, ...FAST });
    assert.ok(fs.readFileSync(path.join(root, "downloads/test2014.zip")).equals(zips.get("/zips/test2014.zip")!));
  });

  test("a corrupt archive: a clear error naming it and the entry; other parts keep their files", async () => {
    const root = freshDir();
    const valPath = "/zips/val2014.zip";
    await downloadCoco({ root, baseUrl: server.url, manifest: smallManifest(), parts: ["annotations"], ...FAST });

    // Flip one byte inside an image: same size, so only the CRC can tell.
    const corrupt = Buffer.from(zips.get(valPath)!);
    const at = corrupt.indexOf(randomBytes(25_000, 42).subarray(1000, 1032)) + 10;
    corrupt[at] ^= 0xff;
    server.files.set(valPath, { body: corrupt });
    const manifest = smallManifest(); // sizes of what is served now; val has no SHA-256, as for most of COCO
    await assert.rejects(
      downloadCoco({ root, baseUrl: server.url, manifest, parts: ["annotations", "val"], ...FAST }),
      /val2014\.zip: entry val2014\/COCO_val2014_000000000042\.jpg: CRC-32 is [0-9a-f]{8} but the archive says [0-9a-f]{8}/,
    );
    for (const [file, data] of expectedFiles(root, ["annotations"])) {
      assert.ok(fs.readFileSync(file).equals(data), `${file} of another part was touched`);
    }
    assert.ok(!fs.existsSync(path.join(root, "images/val2014/COCO_val2014_000000000042.jpg")), "the broken entry must not be left behind");
    assert.ok(!fs.existsSync(path.join(root, "downloads/done-val.json")), "a failed part must not be marked done");
  });

  test("refuses to start when the free disk space is smaller than what is needed", async () => {
    const root = freshDir();
    const manifest = smallManifest();
    const [need] = [await diskNeed(root, manifest)];
    const total = need.download + need.extract;
    await assert.rejects(
      downloadCoco({ root, baseUrl: server.url, manifest, freeBytes: async () => total - 1, ...FAST }),
      new RegExp(`Not enough free disk space in .*: ${formatBytes(total)} needed .*${formatBytes(total - 1)} free`),
    );
    assert.equal(server.requests.length, 0, "nothing may be downloaded");
    await downloadCoco({ root, baseUrl: server.url, manifest, parts: ["test"], freeBytes: async () => total, ...FAST });
    assert.equal(server.requests.length, 1);
  });

  test("the disk need counts only what remains of a partial download", async () => {
    const root = freshDir();
    const [val] = selectParts(smallManifest(), ["val"]);
    const full = await diskNeed(root, [val]);
    assert.equal(full.download, val.zips[0].size);
    assert.equal(full.extract, 40_000);
    fs.mkdirSync(path.join(root, "downloads"));
    fs.writeFileSync(path.join(root, "downloads/val2014.zip.part"), Buffer.alloc(1234));
    assert.equal((await diskNeed(root, [val])).download, val.zips[0].size! - 1234);
  });

  test("a part whose files changed since its marker is done again", async () => {
    const root = freshDir();
    const manifest = smallManifest();
    await downloadCoco({ root, baseUrl: server.url, manifest, parts: ["val"], ...FAST });
    const image = path.join(root, "images/val2014/COCO_val2014_000000000073.jpg");
    fs.rmSync(image);
    const events: CocoEvent[] = [];
    await downloadCoco({ root, baseUrl: server.url, manifest, parts: ["val"], ...FAST, onEvent: (e) => events.push(e) });
    const redo = events.find((e) => e.type === "part-redo");
    assert.match(redo?.type === "part-redo" ? redo.reason : "", /images\/val2014\/COCO_val2014_000000000073\.jpg is missing/);
    assert.ok(fs.existsSync(image));
  });

  test("an unknown part name is an error listing the known ones", () => {
    assert.throws(() => selectParts(smallManifest(), ["val", "vall"]), /Unknown part\(s\) vall: choose from annotations, val, test, train/);
  });
});

describe("npm run data:coco", () => {
  test("--only and --parts choose parts; both at once is an error", () => {
    const only = parseCliArgs(["--only", "annotations"]);
    assert.deepEqual(only !== "help" && only.parts, ["annotations"]);
    const parts = parseCliArgs(["--parts", "annotations, val", "--root", "/tmp/x", "--base-url", "http://mirror/"]);
    assert.ok(parts !== "help");
    assert.deepEqual([parts.parts, parts.root, parts.baseUrl], [["annotations", "val"], "/tmp/x", "http://mirror/"]);
    assert.throws(() => parseCliArgs(["--only", "val", "--parts", "val"]), /give --parts or --only, not both/);
    assert.throws(() => parseCliArgs(["--retries", "many"]), /--retries must be a whole number/);
  });

  test("the command downloads from --base-url with a --manifest file", async () => {
    const root = freshDir();
    const manifestFile = path.join(root, "manifest.json");
    fs.writeFileSync(manifestFile, JSON.stringify(smallManifest()));
    const script = path.resolve(__dirname, "../scripts/download-coco.ts");
    const tsx = path.resolve(__dirname, "../node_modules/.bin/tsx");
    const args = [script, "--root", root, "--base-url", server.url, "--manifest", manifestFile, "--only", "val"];
    const { stdout } = await promisify(execFile)(tsx, args);
    assert.match(stdout, /val2014\.zip: .* downloaded/);
    assert.match(stdout, /fetched \[val\], already there \[\]/);
    assert.ok(fs.existsSync(path.join(root, "images/val2014/COCO_val2014_000000000042.jpg")));
  });
});
