import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1000);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
    socket.once("error", () => resolve(false));
  });
}

/**
 * Waits until `endpoint` (e.g. "http://127.0.0.1:40123") accepts TCP
 * connections. Resolves "listening", "gone" as soon as `stillRunning` says the
 * workload stopped, or "timeout".
 */
export async function waitForListening(
  endpoint: string,
  options: { timeoutMs: number; stillRunning: () => Promise<boolean> },
): Promise<"listening" | "gone" | "timeout"> {
  const { hostname, port } = new URL(endpoint);
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await accepts(hostname, Number(port))) return "listening";
    if (!(await options.stillRunning())) return "gone";
    if (Date.now() >= deadline) return "timeout";
    await sleep(100);
  }
}
