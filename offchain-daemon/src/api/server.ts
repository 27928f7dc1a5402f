import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface ApiServerOptions {
  /** Interface to listen on; keep it loopback unless a proxy guards it. */
  host: string;
  /** 0 picks a free port (see the returned `url`). */
  port: number;
  /** Served as Prometheus text at GET /metrics. */
  registry: Registry;
  /** Served as JSON at GET /vms; bigints become decimal strings. */
  status: () => Promise<unknown> | unknown;
  /** GET /healthz answers 200 when `ok`, else 503, with `detail` in the body. */
  health: () => { ok: boolean; detail?: object };
}

export interface ApiServer {
  /** Base URL actually listened on, e.g. "http://127.0.0.1:9464". */
  url: string;
  /** Stops listening and drops open connections (including idle keep-alive ones). */
  close(): Promise<void>;
}

const routes = ["/healthz", "/metrics", "/vms"];

function sendJson(res: ServerResponse, statusCode: number, body: unknown): void {
  const text = JSON.stringify(body, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
  res.writeHead(statusCode, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(`${text}\n`);
}

async function handle(options: ApiServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (!routes.includes(path)) {
    sendJson(res, 404, { error: `no such endpoint: ${path}`, endpoints: routes });
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    sendJson(res, 405, { error: `${req.method} is not supported; use GET` });
    return;
  }
  try {
    if (path === "/healthz") {
      const { ok, detail } = options.health();
      sendJson(res, ok ? 200 : 503, detail === undefined ? { ok } : { ok, detail });
    } else if (path === "/metrics") {
      const text = await options.registry.metrics();
      res.writeHead(200, { "content-type": options.registry.contentType });
      res.end(text);
    } else {
      sendJson(res, 200, await options.status());
    }
  } catch (error) {
    // A broken health check means unhealthy, not "the API is down".
    sendJson(res, path === "/healthz" ? 503 : 500, { error: error instanceof Error ? error.message : String(error) });
  }
}

/** Serves /healthz, /metrics and /vms over plain HTTP. Resolves once listening. */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  // handle() answers its own errors; this only catches a failure while answering one.
  const server = createServer((req, res) => void handle(options, req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      const hint = error.code === "EADDRINUSE" ? "; something else uses that port, so choose another api.port (NOVACRON_API_PORT)" : "";
      reject(new Error(`cannot serve the API on ${options.host}:${options.port}: ${error.message}${hint}`, { cause: error }));
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
