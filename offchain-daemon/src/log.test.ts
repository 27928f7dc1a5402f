import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "./log.ts";
import type { LogLevel } from "./log.ts";

function capture(level: LogLevel = "info") {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe("createLogger", () => {
  it("writes one JSON object per call, with msg and the given fields", () => {
    const { logger, lines } = capture();
    logger.info({ msg: "reconciled vm", vm_id: "4", from_state: "Leased", to_state: "Running" });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.["msg"], "reconciled vm");
    assert.equal(lines[0]?.["to_state"], "Running");
    assert.equal(lines[0]?.["level"], 30);
    assert.ok(!Number.isNaN(Date.parse(String(lines[0]?.["time"]))));
  });

  it("never writes an operator or private key or a keystore password, top-level or nested", () => {
    const { logger, lines } = capture();
    const key = `0x${"ab".repeat(32)}`;
    logger.info({ msg: "config", operatorKey: key, config: { operatorKey: key }, err: { cause: { privateKey: key } }, keystore: { password: "abababab" } });
    logger.child({ privateKey: key, account: { privateKey: key } }).warn({ msg: "child" });
    const text = JSON.stringify(lines);
    assert.ok(!text.includes("abab"), text);
    assert.equal(lines[0]?.["operatorKey"], "[redacted]");
    assert.deepEqual(lines[1]?.["account"], { privateKey: "[redacted]" });
  });

  it("writes bigints as exact decimal strings, in child bindings too", () => {
    const { logger, lines } = capture();
    const id = 2n ** 200n + 1n;
    logger.info({ msg: "vm", vm_id: id, nested: { block: 7n }, list: [1n] });
    logger.child({ vm_id: id }).child({ block: 9n }).info({ msg: "child" });
    assert.equal(lines[0]?.["vm_id"], id.toString());
    assert.deepEqual(lines[0]?.["nested"], { block: "7" });
    assert.deepEqual(lines[0]?.["list"], ["1"]);
    assert.equal(lines[1]?.["vm_id"], id.toString());
    assert.equal(lines[1]?.["block"], "9");
  });

  it("drops lines below the level", () => {
    const { logger, lines } = capture("warn");
    logger.info({ msg: "quiet" });
    logger.error({ msg: "loud" });
    assert.deepEqual(
      lines.map((line) => line["msg"]),
      ["loud"],
    );
  });
});
