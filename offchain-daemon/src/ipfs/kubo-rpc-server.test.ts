import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { create, type KuboRPCClient } from "kubo-rpc-client";
import { rawCid } from "./block.ts";
import { createEmbeddedStore, type EmbeddedStore } from "./embedded.ts";
import { type KuboRpcServer, NonLoopbackHostError, startKuboRpcServer } from "./kubo-rpc-server.ts";

const HELLO = new TextEncoder().encode("hello world\n");
const DAPP = "http://127.0.0.1:5173";

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of chunks) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

describe("Kubo RPC server", () => {
  let directory: string;
  let node: EmbeddedStore;
  let rpc: KuboRpcServer;
  let client: KuboRPCClient;
  const post = (path: string, init: RequestInit = {}) => fetch(`${rpc.url}/api/v0/${path}`, { method: "POST", ...init });

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "novacron-rpc-"));
    node = await createEmbeddedStore({ directory });
    rpc = await startKuboRpcServer({ store: node, port: 0, maxBodyBytes: 64 * 1024, allowedOrigins: [DAPP] });
    client = create({ url: rpc.url });
  });
  after(async () => {
    await rpc.close();
    await node.close();
    await rm(directory, { recursive: true, force: true });
  });

  test("binds loopback and answers version and id", async () => {
    assert.match(rpc.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match((await client.version()).version, /^helia-/);
    assert.match((await client.id()).id.toString(), /^12D3KooW/);
  });

  test("add answers NDJSON with the raw CID, and block/stat, block/get and cat serve it", async () => {
    const added = await client.add(HELLO, { cidVersion: 1, rawLeaves: true, pin: true });
    assert.equal(added.cid.toString(), "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4");
    assert.equal(added.size, HELLO.byteLength);
    assert.deepEqual(await client.block.stat(added.cid), { cid: added.cid, size: HELLO.byteLength });
    assert.deepEqual(await client.block.get(added.cid), HELLO);
    assert.equal(await collect(client.cat(added.cid)), "hello world\n");
    assert.equal(await collect(client.cat(`/ipfs/${added.cid}`, { offset: 6, length: 5 })), "world");
  });

  test("add refuses options whose CID it cannot reproduce, such as Kubo's CIDv0 default", async () => {
    await assert.rejects(client.add(HELLO), /only implements add with cid-version=1 and raw-leaves=true/);
  });

  test("a missing block is an error in Kubo's shape with Kubo's offline wording", async () => {
    const missing = await rawCid(new TextEncoder().encode("absent"));
    const response = await post(`cat?arg=${missing}`);
    assert.equal(response.status, 500);
    assert.deepEqual(await response.json(), {
      Message: `block was not found locally (offline): ipld: could not find ${missing}`,
      Code: 0,
      Type: "error",
    });
  });

  test("unknown commands answer 404 and other methods 405", async () => {
    const unknown = await post("pin/ls");
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { Message: string }).Message, /not implemented by this embedded IPFS node/);
    assert.equal((await fetch(`${rpc.url}/api/v0/version`)).status, 405);
  });

  test("a body over the limit gets 413, whether its length is declared or streamed", async () => {
    const declared = await post("add?cid-version=1", { body: new Uint8Array(64 * 1024 + 1) });
    assert.equal(declared.status, 413);
    assert.equal(((await declared.json()) as { Type: string }).Type, "error");

    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 80; i++) controller.enqueue(new Uint8Array(1024));
        controller.close();
      },
    });
    const streamed = await post("add?cid-version=1", { body, duplex: "half" } as RequestInit);
    assert.equal(streamed.status, 413);
  });

  test("browser origins are refused unless allowed, and allowed ones get CORS headers", async () => {
    const refused = await post("version", { headers: { Origin: "https://evil.example" } });
    assert.equal(refused.status, 403);
    const allowed = await post("version", { headers: { Origin: DAPP } });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get("access-control-allow-origin"), DAPP);
    const preflight = await fetch(`${rpc.url}/api/v0/add`, { method: "OPTIONS", headers: { Origin: DAPP } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-methods"), "POST");
  });

  test("refuses to bind a non-loopback address", async () => {
    await assert.rejects(startKuboRpcServer({ store: node, host: "0.0.0.0", port: 0 }), NonLoopbackHostError);
  });
});

describe("scripts/ipfs-node.ts", () => {
  test("prints ipfs-ready, serves the API and stops cleanly on SIGTERM", async () => {
    const directory = await mkdtemp(join(tmpdir(), "novacron-ipfs-node-"));
    const script = new URL("../../../scripts/ipfs-node.ts", import.meta.url).pathname;
    const child = spawn(process.execPath, [script, "--dir", directory, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const nextEvent = async () => JSON.parse(String((await lines.next()).value)) as { event: string; url: string };
      const ready = await nextEvent();
      assert.equal(ready.event, "ipfs-ready");
      const added = await create({ url: ready.url }).add(HELLO, { cidVersion: 1, rawLeaves: true });
      assert.equal(added.cid.toString(), "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4");

      child.kill("SIGTERM");
      assert.equal((await nextEvent()).event, "ipfs-stopped");
      const [code] = await once(child, "exit");
      assert.equal(code, 0);
    } finally {
      child.kill("SIGKILL");
      await rm(directory, { recursive: true, force: true });
    }
  });
});
