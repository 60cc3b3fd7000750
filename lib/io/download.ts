/**
 * Download one large file over HTTP(S) so that a flaky network cannot ruin it.
 *
 * The bytes go to `<dest>.part`, which is renamed to `<dest>` only once the file is whole
 * and verified, so a file under its final name is always complete. On top of that:
 *
 * - Resume. An interrupted download keeps its `.part`. The next attempt asks only for the
 *   rest (`Range: bytes=N-`) and sends the version it started from (`If-Range`: the ETag or
 *   Last-Modified that the server gave, kept in `<dest>.part.json`). The server answers
 *   206 with exactly the rest (checked through `Content-Range`), or 200 with the whole file
 *   when it ignores ranges or the file has changed: then we start over from zero.
 * - Retry. Network errors and 5xx/429 answers are retried after 1x, 2x, 4x ... the base
 *   delay (exponential back-off); the count starts again whenever an attempt made progress.
 * - Verify. The size that the server announces and the final size must equal the expected
 *   size; the SHA-256 must match when one is known.
 */

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";

/** What happens during a download, for progress bars and logs. */
export type DownloadEvent =
  /** A request is answered; `received` > 0 when it continues a `.part`. */
  | { type: "start"; received: number; total: number | undefined }
  | { type: "progress"; received: number; total: number | undefined }
  /** An attempt failed; the next one starts after `delayMs`. */
  | { type: "retry"; attempt: number; delayMs: number; reason: string }
  /** The bytes already in `.part` cannot be continued; the download starts from zero. */
  | { type: "restart"; reason: string }
  /** All bytes are in; the SHA-256 of the file is being computed. */
  | { type: "verify" }
  | { type: "done"; bytes: number };

export interface DownloadOptions {
  /** Exact size in bytes, when known: checked against the server's headers and the file. */
  size?: number;
  /** Expected SHA-256 (hex), when known. */
  sha256?: string;
  /** How many times a failing request is tried again (default 5). */
  retries?: number;
  /** Delay before the first retry, doubled for each next one (default 1000 ms). */
  backoffMs?: number;
  /** A request fails when the server sends nothing for this long (default 60 s). */
  timeoutMs?: number;
  onEvent?: (event: DownloadEvent) => void;
}

/** An error that says whether trying again could help. */
export class DownloadError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "DownloadError";
  }
}

/** The longest pause between two attempts, however many have failed. */
const MAX_BACKOFF_MS = 60_000;

/** Error codes of failures in the network (not in our disk or our request): worth a retry. */
const NETWORK_ERRORS = new Set([
  "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ETIMEDOUT", "EPIPE",
  "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH", "ENETDOWN", "ERR_STREAM_PREMATURE_CLOSE",
]);

/**
 * Downloads `url` to `dest`, resuming and retrying as described at the top of this file.
 * Returns "skipped" when `dest` is already there with the expected size.
 */
export async function downloadFile(
  url: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<"downloaded" | "skipped"> {
  const name = path.basename(dest);
  if (await isAlreadyDownloaded(dest, options.size)) return "skipped";
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const retries = options.retries ?? 5;
  const backoffMs = options.backoffMs ?? 1000;

  let total: number | undefined;
  for (let failures = 0; ; ) {
    const before = await fileSize(part);
    try {
      total = await fetchRest(url, part, options);
      break;
    } catch (err) {
      if (!isRetryable(err)) throw prefixed(name, err);
      // A connection that delivered bytes before it broke is progress, not a failure streak.
      if ((await fileSize(part)) > before) failures = 0;
      if (failures === retries) throw prefixed(name, err, `gave up after ${retries + 1} attempts`);
      const delayMs = Math.min(backoffMs * 2 ** failures, MAX_BACKOFF_MS);
      failures++;
      options.onEvent?.({ type: "retry", attempt: failures, delayMs, reason: (err as Error).message });
      await sleep(delayMs);
    }
  }
  await verify(part, name, options.size ?? total, options.sha256, options.onEvent);
  await fsp.rename(part, dest);
  await fsp.rm(validatorsFile(part), { force: true });
  options.onEvent?.({ type: "done", bytes: await fileSize(dest) });
  return "downloaded";
}

/** The version of the remote file whose bytes `.part` holds (saved next to it). */
interface Validators {
  url: string;
  etag?: string;
  lastModified?: string;
}

/**
 * One attempt: asks for what `.part` still lacks and appends it.
 * Returns the total size that the server announced, if it did.
 */
async function fetchRest(url: string, part: string, options: DownloadOptions): Promise<number | undefined> {
  const { offset, validator } = await resumePoint(url, part);
  if (offset > 0 && offset === options.size) return options.size; // complete before a crash

  const headers: http.OutgoingHttpHeaders = offset > 0 ? { range: `bytes=${offset}-`, "if-range": validator } : {};
  const res = await get(url, headers, options.timeoutMs ?? 60_000);
  const status = res.statusCode ?? 0;

  let start: number;
  let total: number | undefined;
  if (status === 206 && offset > 0) {
    const range = parseContentRange(res.headers["content-range"]);
    if (range?.start !== offset) {
      res.destroy();
      await removePart(part);
      throw new DownloadError(`bad Content-Range "${res.headers["content-range"]}" for bytes=${offset}-`, true);
    }
    [start, total] = [offset, range.total];
  } else if (status === 200) {
    if (offset > 0) {
      options.onEvent?.({ type: "restart", reason: "the server sent the whole file (it ignored Range, or the file changed)" });
    }
    const length = res.headers["content-length"];
    [start, total] = [0, length === undefined ? undefined : Number(length)];
    await saveValidators(part, { url, etag: strongEtag(res.headers.etag), lastModified: res.headers["last-modified"] });
  } else {
    res.resume(); // discard the body so the socket is freed
    if (status === 416) await removePart(part); // our .part is longer than the file: start over
    const retryable = status === 416 || status === 408 || status === 429 || status >= 500;
    throw new DownloadError(`HTTP ${status} ${res.statusMessage ?? ""} from ${url}`.trim(), retryable);
  }

  if (options.size !== undefined && total !== undefined && total !== options.size) {
    res.destroy();
    throw new DownloadError(`the server sends ${total} bytes but ${options.size} are expected (${url})`, false);
  }
  options.onEvent?.({ type: "start", received: start, total });
  await writeBody(res, part, start, total, options.onEvent);
  return total;
}

/**
 * Appends the response body to `.part` (from `start`), reporting progress. Each chunk is on
 * disk before the next is read, so when the connection breaks, everything received is kept
 * for the next attempt to continue from.
 */
async function writeBody(
  res: http.IncomingMessage,
  part: string,
  start: number,
  total: number | undefined,
  onEvent: DownloadOptions["onEvent"],
): Promise<void> {
  const file = await fsp.open(part, start > 0 ? "a" : "w");
  let received = start;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      await file.write(chunk);
      received += chunk.length;
      onEvent?.({ type: "progress", received, total });
    }
  } catch (err) {
    if (!isRetryable(err)) throw err; // e.g. the disk is full: trying again will not help
    throw new DownloadError(`the connection broke after ${received} of ${total ?? "?"} bytes (${(err as Error).message})`, true);
  } finally {
    await file.close();
  }
  if (total !== undefined && received < total) {
    throw new DownloadError(`the connection closed after ${received} of ${total} bytes`, true);
  }
}

/** Checks the finished `.part`: its size, then its SHA-256 when one is expected. */
async function verify(
  part: string,
  name: string,
  size: number | undefined,
  sha256: string | undefined,
  onEvent: DownloadOptions["onEvent"],
): Promise<void> {
  const actual = await fileSize(part);
  if (size !== undefined && actual !== size) {
    throw new DownloadError(`${name}: downloaded ${actual} bytes but ${size} are expected`, false);
  }
  if (sha256 === undefined) return;
  onEvent?.({ type: "verify" });
  const hash = crypto.createHash("sha256");
  await pipeline(fs.createReadStream(part), hash);
  const digest = hash.digest("hex");
  if (digest !== sha256.toLowerCase()) {
    await removePart(part); // its bytes are wrong somewhere: resuming would keep them
    throw new DownloadError(
      `${name}: SHA-256 is ${digest} but ${sha256} is expected; the download was deleted, run again to fetch it anew`,
      false,
    );
  }
}

/** True when `dest` exists; an existing file of the wrong size is an error, not a reason to overwrite it. */
async function isAlreadyDownloaded(dest: string, size: number | undefined): Promise<boolean> {
  const stat = await fsp.stat(dest).catch(() => undefined);
  if (!stat) return false;
  if (size !== undefined && stat.size !== size) {
    throw new DownloadError(`${dest} exists with ${stat.size} bytes but ${size} are expected: delete it to download it again`, false);
  }
  return true;
}

/**
 * Where to continue: at the end of `.part` when its bytes come from this URL and we know
 * their version (the validator to send in If-Range); otherwise at zero (a `.part` whose
 * origin we cannot vouch for is discarded).
 */
async function resumePoint(url: string, part: string): Promise<{ offset: number; validator?: string }> {
  const size = await fileSize(part);
  if (size === 0) return { offset: 0 };
  const saved = await readValidators(part);
  const validator = saved?.url === url ? (saved.etag ?? saved.lastModified) : undefined;
  if (validator) return { offset: size, validator };
  await removePart(part);
  return { offset: 0 };
}

/** GET with redirects followed; fails when the server stays silent for `timeoutMs`. */
function get(url: string, headers: http.OutgoingHttpHeaders, timeoutMs: number, redirects = 5): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith("https:") ? https : http;
    let response: http.IncomingMessage | undefined;
    const req = client.get(url, { headers }, (res) => {
      const location = res.headers.location;
      if (location && [301, 302, 303, 307, 308].includes(res.statusCode ?? 0)) {
        res.resume();
        if (redirects === 0) return reject(new DownloadError(`too many redirects from ${url}`, false));
        return resolve(get(new URL(location, url).href, headers, timeoutMs, redirects - 1));
      }
      response = res;
      resolve(res);
    });
    // The timeout watches the socket for the whole transfer, body included.
    req.setTimeout(timeoutMs, () => {
      const err = Object.assign(new Error(`no data from ${url} for ${timeoutMs} ms`), { code: "ETIMEDOUT" });
      response?.destroy(err);
      req.destroy(err);
    });
    req.on("error", reject);
  });
}

/** Parses `bytes START-END/TOTAL` (TOTAL may be `*`). */
function parseContentRange(header: string | undefined): { start: number; total: number | undefined } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header ?? "");
  if (!match) return undefined;
  return { start: Number(match[1]), total: match[3] === "*" ? undefined : Number(match[3]) };
}

/** If-Range only accepts a strong ETag; a weak one (`W/"..."`) is dropped in favour of Last-Modified. */
function strongEtag(etag: string | undefined): string | undefined {
  return etag && !etag.startsWith("W/") ? etag : undefined;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof DownloadError) return err.retryable;
  return NETWORK_ERRORS.has((err as NodeJS.ErrnoException).code ?? "");
}

/** The same error with the file name in front, so every message says which file failed. */
function prefixed(name: string, err: unknown, note?: string): Error {
  const message = (err as Error).message;
  const text = message.startsWith(`${name}:`) ? message : `${name}: ${message}`;
  return new DownloadError(note ? `${text} (${note})` : text, false);
}

function validatorsFile(part: string): string {
  return `${part}.json`;
}

async function readValidators(part: string): Promise<Validators | undefined> {
  const text = await fsp.readFile(validatorsFile(part), "utf8").catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as Validators);
}

async function saveValidators(part: string, validators: Validators): Promise<void> {
  await fsp.writeFile(validatorsFile(part), JSON.stringify(validators));
}

async function removePart(part: string): Promise<void> {
  await fsp.rm(part, { force: true });
  await fsp.rm(validatorsFile(part), { force: true });
}

async function fileSize(file: string): Promise<number> {
  return (await fsp.stat(file).catch(() => undefined))?.size ?? 0;
}
