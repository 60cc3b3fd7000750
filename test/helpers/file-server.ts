/**
 * A small HTTP file server on 127.0.0.1 for downloader tests: it serves buffers from memory
 * with Range/If-Range support (like S3 behind images.cocodataset.org), records every request,
 * and can misbehave on purpose (drop a connection, answer 503, ignore Range).
 */

import * as crypto from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** Ways a file can misbehave. */
export interface Fault {
  /** On the first request for the file, send this many body bytes, then destroy the socket. */
  dropAfter?: number;
  /** Answer the first `failTimes` requests with `failStatus` (default 503). */
  failTimes?: number;
  failStatus?: number;
  /** Always send the whole file with 200, whatever Range says. */
  ignoreRange?: boolean;
}

export interface ServedFile {
  body: Buffer;
  fault?: Fault;
}

/** One request as the server saw it. */
export interface RequestRecord {
  path: string;
  range?: string;
  ifRange?: string;
  status: number;
}

/** The last-modified date every file claims (fixed, so If-Range by date is stable). */
const LAST_MODIFIED = new Date("2015-01-01T00:00:00Z").toUTCString();

export class FileServer {
  /** Files by URL path ("/zips/val2014.zip"); change them at will between requests. */
  readonly files = new Map<string, ServedFile>();
  readonly requests: RequestRecord[] = [];
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  /** Requests so far per path: faults play on a file's first requests. */
  private readonly seen = new Map<string, number>();

  /** Starts on a free port of 127.0.0.1. */
  static async start(): Promise<FileServer> {
    const server = new FileServer();
    await new Promise<void>((resolve) => server.server.listen(0, "127.0.0.1", resolve));
    return server;
  }

  /** Base URL, ending in "/". */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/`;
  }

  /** Requests made for one path. */
  requestsFor(path: string): RequestRecord[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Forgets files, requests and faults already played, for the next test. */
  reset(): void {
    this.files.clear();
    this.requests.length = 0;
    this.seen.clear();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections(); // keep-alive sockets would hold close() open
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const ifRange = req.headers["if-range"] as string | undefined; // a single-valued header
    const record: RequestRecord = { path, range: req.headers.range, ifRange, status: 0 };
    this.requests.push(record);
    const n = (this.seen.get(path) ?? 0) + 1;
    this.seen.set(path, n);
    const file = this.files.get(path);
    const fault = file?.fault ?? {};

    if (!file) return this.reply(res, record, 404);
    if (n <= (fault.failTimes ?? 0)) return this.reply(res, record, fault.failStatus ?? 503);

    const size = file.body.length;
    const etag = `"${crypto.createHash("sha1").update(file.body).digest("hex")}"`;
    const headers: http.OutgoingHttpHeaders = { etag, "last-modified": LAST_MODIFIED, "accept-ranges": "bytes" };
    let [start, end] = [0, size - 1];
    record.status = 200;

    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    // If-Range: send the range only while the file is still the version the client has.
    if (range && !fault.ignoreRange && (ifRange === undefined || ifRange === etag || ifRange === LAST_MODIFIED)) {
      start = Number(range[1]);
      end = range[2] === "" ? size - 1 : Math.min(Number(range[2]), size - 1);
      if (start >= size || start > end) {
        return this.reply(res, record, 416, { "content-range": `bytes */${size}` });
      }
      record.status = 206;
      headers["content-range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["content-length"] = end - start + 1;
    res.writeHead(record.status, headers);
    const body = file.body.subarray(start, end + 1);
    if (fault.dropAfter !== undefined && n === (fault.failTimes ?? 0) + 1) {
      // Send the first bytes, give the client time to store them, then cut the connection
      // as a failing network would.
      res.write(body.subarray(0, fault.dropAfter), () => setTimeout(() => res.socket?.destroy(), 200));
      return;
    }
    res.end(body);
  }

  private reply(res: http.ServerResponse, record: RequestRecord, status: number, headers: http.OutgoingHttpHeaders = {}): void {
    record.status = status;
    res.writeHead(status, headers).end();
  }
}
