/**
 * The embedded IPFS node's face to other processes: a small HTTP server that
 * speaks the part of the Kubo RPC API (https://docs.ipfs.tech/reference/kubo/rpc/)
 * that kubo-rpc-client uses for `add`, `cat`, `block/get`, `block/stat`, `id`
 * and `version`, over the blocks of an {@link EmbeddedStore}. `npm start` runs
 * it so the daemon and the CLI share one node through the same client code
 * that talks to a real Kubo; pointing them at a real Kubo node works too.
 *
 * Scope, honestly: only that subset exists. `add` stores each file as ONE raw
 * block (cid-version=1, raw-leaves, sha2-256, at most 256 KiB, no directories,
 * always pinned); `cat` serves raw-codec CIDs only; `id` reports a peer id
 * that nobody can dial, because no libp2p runs here. Anything else answers
 * 404 with a Kubo-style error. It binds loopback only and, like Kubo, refuses
 * browser origins that are not explicitly allowed.
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { base58btc } from "multiformats/bases/base58";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import type { EmbeddedStore } from "./embedded.ts";
import { ContentNotFoundError, ContentTooLargeError } from "./types.ts";

export interface StartKuboRpcServerParameters {
  /** The node whose blocks are served and into which `add` writes. */
  store: EmbeddedStore;
  /** Address to bind; must be a loopback address because the API writes to the node. Default "127.0.0.1". */
  host?: string;
  /** TCP port; 0 picks a free one (read it back from `url`). */
  port: number;
  /** Largest request body accepted, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Browser origins (e.g. the dApp's "http://127.0.0.1:5173") allowed to call the API. Default none. */
  allowedOrigins?: readonly string[];
}

export interface KuboRpcServer {
  /** Base URL to give kubo-rpc-client, e.g. "http://127.0.0.1:5001". */
  readonly url: string;
  /** Stops accepting connections and resolves when in-flight requests have finished. */
  close(): Promise<void>;
}

export class NonLoopbackHostError extends Error {
  override readonly name = "NonLoopbackHostError";
  constructor(host: string) {
    super(
      `Refusing to bind the IPFS RPC API to ${host}: anyone who reaches it can write to the node. Bind 127.0.0.1 (or ::1) and put an authenticating proxy in front if it must be remote.`,
    );
  }
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** An error reply in Kubo's shape; `code` 1 marks the caller's mistake, 0 the node's, as in Kubo's cmds library. */
class RpcError extends Error {
  readonly status: number;
  readonly code: 0 | 1;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
    this.code = status >= 400 && status < 500 ? 1 : 0;
  }
}

type Handler = (request: RpcRequest) => Promise<void>;

interface RpcRequest {
  params: URLSearchParams;
  body: Buffer;
  contentType: string;
  res: ServerResponse;
  signal: AbortSignal;
}

export async function startKuboRpcServer({
  store,
  host = "127.0.0.1",
  port,
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  allowedOrigins = [],
}: StartKuboRpcServerParameters): Promise<KuboRpcServer> {
  if (!isLoopback(host)) throw new NonLoopbackHostError(host);
  const identity = createIdentity();

  const handlers: Record<string, Handler> = {
    "/api/v0/add": async ({ params, body, contentType, res, signal }) => {
      assertSingleRawBlockAdd(params);
      const files = await parseFiles(body, contentType);
      const lines: string[] = [];
      for (const file of files) {
        const bytes = new Uint8Array(await file.arrayBuffer());
        const cid = (await store.putRaw(bytes, { signal })).toString();
        lines.push(JSON.stringify({ Name: fileName(file) || cid, Hash: cid, Size: String(bytes.byteLength) }));
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(lines.join("\n") + "\n");
    },

    "/api/v0/cat": async ({ params, res, signal }) => {
      const cid = cidArgument(params);
      if (cid.code !== raw.code) {
        throw new RpcError(
          500,
          `cat of ${cid} is not implemented by this embedded node: it serves raw-codec CIDs only. Use block/get, or a Kubo node.`,
        );
      }
      const offset = integerParam(params, "offset") ?? 0;
      const length = integerParam(params, "length") ?? Number.POSITIVE_INFINITY;
      await sendStream(res, slice(store.streamBlock(cid, { signal }), offset, length));
    },

    "/api/v0/block/get": async ({ params, res, signal }) => {
      await sendStream(res, store.streamBlock(cidArgument(params), { signal }));
    },

    "/api/v0/block/stat": async ({ params, res, signal }) => {
      const cid = cidArgument(params);
      let size = 0;
      for await (const chunk of store.streamBlock(cid, { signal })) size += chunk.byteLength;
      sendJson(res, { Key: cid.toString(), Size: size });
    },

    "/api/v0/id": async ({ res }) => {
      sendJson(res, {
        ID: identity.id,
        PublicKey: identity.publicKey,
        Addresses: [],
        AgentVersion: `novacron-embedded/${store.helia.info.name}-${store.helia.info.version}`,
        Protocols: [],
      });
    },

    "/api/v0/version": async ({ res }) => {
      sendJson(res, { Version: `${store.helia.info.name}-${store.helia.info.version}`, System: `${process.arch}/${process.platform}` });
    },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A client that goes away cancels the block read it asked for.
    const controller = new AbortController();
    res.on("close", () => controller.abort());
    try {
      if (!allowOrigin(req, res, allowedOrigins)) return;
      if (req.method !== "POST") throw new RpcError(405, `${req.method} is not allowed: the RPC API takes POST only.`);
      const url = new URL(req.url ?? "/", "http://localhost");
      const handler = handlers[url.pathname];
      if (handler === undefined) {
        throw new RpcError(404, `${url.pathname} is not implemented by this embedded IPFS node. Use a Kubo node for the full RPC API.`);
      }
      const body = await readBody(req, maxBodyBytes);
      await handler({
        params: url.searchParams,
        body,
        contentType: req.headers["content-type"] ?? "",
        res,
        signal: controller.signal,
      });
    } catch (err) {
      if (res.headersSent) {
        res.destroy(err instanceof Error ? err : undefined);
        return;
      }
      const error = toRpcError(err);
      // Closing ends the upload of an oversized body that readBody is still discarding.
      if (error.status === 413) res.setHeader("Connection", "close");
      res.writeHead(error.status, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ Message: error.message, Code: error.code, Type: "error" }));
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${urlHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Like Kubo, serves requests without an Origin header (programs) and refuses
 * browser origins not listed: otherwise any web page could write to the node.
 * Returns false when it has answered the request itself.
 */
function allowOrigin(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (!allowed.includes(origin)) {
    throw new RpcError(403, `Origin ${origin} is not allowed to use this IPFS node. Start it with --allow-origin ${origin}.`);
  }
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Vary", "Origin");
  if (req.method !== "OPTIONS") return true;
  res.writeHead(204, {
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
  });
  res.end();
  return false;
}

/**
 * Reads the body up to `maxBytes`. Past the limit it rejects but keeps
 * discarding what the client still sends: destroying the request would reset
 * the socket and the client would never see the 413 reply.
 */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const refuse = () => {
      req.removeListener("data", collect);
      req.resume();
      reject(new RpcError(413, `Request body is larger than ${maxBytes} bytes. This node stores single blocks of at most 256 KiB.`));
    };
    const chunks: Buffer[] = [];
    let total = 0;
    const collect = (chunk: Buffer) => {
      total += chunk.byteLength;
      if (total > maxBytes) refuse();
      else chunks.push(chunk);
    };
    if (Number(req.headers["content-length"] ?? 0) > maxBytes) return refuse();
    req.on("data", collect);
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

/** Refuses add options whose result this node cannot reproduce, rather than answering with a CID Kubo would not give. */
function assertSingleRawBlockAdd(params: URLSearchParams): void {
  if (params.get("cid-version") !== "1" || params.get("raw-leaves") === "false") {
    throw new RpcError(400, "This embedded node only implements add with cid-version=1 and raw-leaves=true.");
  }
  const hash = params.get("hash");
  if (hash !== null && hash !== "sha2-256") {
    throw new RpcError(400, `This embedded node only implements add with hash=sha2-256, not ${hash}.`);
  }
  for (const option of ["wrap-with-directory", "only-hash", "inline", "trickle"]) {
    if (params.get(option) === "true") throw new RpcError(400, `This embedded node does not implement add with ${option}=true.`);
  }
}

async function parseFiles(body: Buffer, contentType: string): Promise<File[]> {
  if (!contentType.startsWith("multipart/form-data")) {
    throw new RpcError(400, "add expects a multipart/form-data body with one part per file.");
  }
  let form: FormData;
  try {
    form = await new Request("http://localhost/", { method: "POST", body, headers: { "content-type": contentType } }).formData();
  } catch (err) {
    throw new RpcError(400, `add could not parse the multipart body: ${(err as Error).message}`);
  }
  const files: File[] = [];
  for (const [, value] of form) {
    if (typeof value === "string" || value.type === "application/x-directory" || fileName(value).includes("/")) {
      throw new RpcError(400, "This embedded node adds plain files only, not directories.");
    }
    files.push(value);
  }
  if (files.length === 0) throw new RpcError(400, "add needs at least one file part.");
  return files;
}

/** kubo-rpc-client percent-encodes file names in the multipart header. */
function fileName(file: File): string {
  try {
    return decodeURIComponent(file.name);
  } catch {
    return file.name;
  }
}

function cidArgument(params: URLSearchParams): CID {
  const arg = params.get("arg");
  if (arg === null) throw new RpcError(400, 'argument "cid" is required');
  try {
    return CID.parse(arg.startsWith("/ipfs/") ? arg.slice("/ipfs/".length) : arg);
  } catch {
    throw new RpcError(400, `invalid path ${JSON.stringify(arg)}: this node takes a bare CID or /ipfs/<cid>`);
  }
}

function integerParam(params: URLSearchParams, name: string): number | undefined {
  const value = params.get(name);
  if (value === null) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new RpcError(400, `${name} must be a non-negative integer, got ${value}`);
  return parsed;
}

/** Yields bytes [offset, offset + length) of `chunks`, and stops reading the source once past the end. */
async function* slice(chunks: AsyncIterable<Uint8Array>, offset: number, length: number): AsyncGenerator<Uint8Array> {
  let position = 0;
  const end = offset + length;
  for await (const chunk of chunks) {
    const start = Math.max(offset - position, 0);
    const stop = Math.min(end - position, chunk.byteLength);
    if (stop > start) yield chunk.subarray(start, stop);
    position += chunk.byteLength;
    if (position >= end) return;
  }
}

/** Pulls the first chunk before answering so that a missing block becomes an error reply, not a truncated 200. */
async function sendStream(res: ServerResponse, chunks: AsyncGenerator<Uint8Array>): Promise<void> {
  const first = await chunks.next();
  res.writeHead(200, { "Content-Type": "application/octet-stream" });
  if (first.done) {
    res.end();
    return;
  }
  await pipeline(
    Readable.from((async function* () {
      yield first.value;
      yield* chunks;
    })()),
    res,
  );
}

function sendJson(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify(value) + "\n");
}

function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  // Kubo's own offline wording, which clients (ours included) recognise as a miss.
  if (err instanceof ContentNotFoundError) return new RpcError(500, `block was not found locally (offline): ipld: could not find ${err.cid}`);
  if (err instanceof ContentTooLargeError) return new RpcError(400, err.message);
  return new RpcError(500, err instanceof Error ? err.message : String(err));
}

/**
 * `id` must answer with a valid libp2p peer id. It is derived from a fresh
 * Ed25519 key whose private half is dropped: no libp2p host runs here, so the
 * id only names this process in `id` output.
 */
function createIdentity(): { id: string; publicKey: string } {
  const jwk = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" });
  const key = Buffer.from(jwk.x ?? "", "base64url");
  // libp2p PublicKey protobuf: field 1 KeyType = Ed25519 (1), field 2 Data = 32 bytes.
  const protobuf = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, key.byteLength]), key]);
  // Identity multihash (0x00) of the protobuf, as libp2p does for keys this small.
  const multihash = Buffer.concat([Buffer.from([0x00, protobuf.byteLength]), protobuf]);
  return { id: base58btc.baseEncode(multihash), publicKey: protobuf.toString("base64") };
}
