/**
 * Runs the embedded IPFS node (Helia, blocks on disk) behind the Kubo RPC
 * subset, for the daemon and the CLI to share:
 *
 *   node scripts/ipfs-node.ts --dir data/ipfs --port 5001 [--allow-origin http://127.0.0.1:5173]
 *
 * Prints one JSON line {"event":"ipfs-ready","url":...} on stdout once it
 * accepts requests; stops cleanly on SIGINT or SIGTERM.
 */
import { parseArgs } from "node:util";
import { createEmbeddedStore } from "../offchain-daemon/src/ipfs/embedded.ts";
import { startKuboRpcServer } from "../offchain-daemon/src/ipfs/kubo-rpc-server.ts";

const { values } = parseArgs({
  options: {
    dir: { type: "string", default: "data/ipfs" },
    port: { type: "string", default: "5001" },
    "allow-origin": { type: "string", multiple: true, default: [] },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`--port must be an integer from 0 to 65535, got ${values.port}`);
  process.exit(2);
}

const store = await createEmbeddedStore({ directory: values.dir });
const server = await startKuboRpcServer({ store, port, allowedOrigins: values["allow-origin"] }).catch(async (err: unknown) => {
  await store.close();
  throw err;
});
console.log(JSON.stringify({ event: "ipfs-ready", url: server.url, dir: values.dir }));

let stopping = false;
async function stop(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  await store.close();
  console.log(JSON.stringify({ event: "ipfs-stopped", signal }));
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    stop(signal).catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
  });
}
