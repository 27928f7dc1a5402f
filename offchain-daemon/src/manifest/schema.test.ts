import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManifestSchema } from "./schema.ts";

const minimal = () => ({
  version: 1,
  name: "hello",
  resources: { vcpu: 1, memoryMiB: 128, diskGiB: 1 },
  workload: { type: "process", command: "node" },
});

/** Applies `change` to a fresh minimal manifest and returns the first issue's path, or "valid". */
function firstIssue(change: (manifest: any) => void): string {
  const manifest = minimal();
  change(manifest);
  const result = ManifestSchema.safeParse(manifest);
  return result.success ? "valid" : (result.error.issues[0]?.path.join(".") ?? "");
}

describe("manifest schema", () => {
  test("accepts a minimal manifest and fills in the defaults", () => {
    assert.deepEqual(ManifestSchema.parse(minimal()), {
      ...minimal(),
      workload: { type: "process", command: "node", args: [], env: {} },
      ports: [],
    });
  });

  test("accepts values at every limit", () => {
    assert.equal(
      firstIssue((m) => {
        m.name = "a".repeat(63);
        m.resources = { vcpu: 256, memoryMiB: 1_048_576, diskGiB: 65_536 };
        m.workload.command = "x".repeat(64);
        m.workload.args = Array.from({ length: 64 }, () => "y".repeat(4096));
        m.workload.env = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`VAR_${i}`, "v"]));
        m.ports = Array.from({ length: 16 }, (_, i) => ({ name: `p${i}`, protocol: "tcp" }));
      }),
      "valid",
    );
    assert.equal(firstIssue((m) => (m.resources = { vcpu: 1, memoryMiB: 16, diskGiB: 1 })), "valid");
  });

  const rejections: Array<[string, (manifest: any) => void, string]> = [
    ["an unknown top-level key", (m) => (m.image = "x"), ""],
    ["an unknown key inside resources", (m) => (m.resources.gpu = 1), "resources"],
    ["another version", (m) => (m.version = 2), "version"],
    ["an empty name", (m) => (m.name = ""), "name"],
    ["a 64-character name", (m) => (m.name = "a".repeat(64)), "name"],
    ["uppercase in the name", (m) => (m.name = "Hello"), "name"],
    ["a name ending in '-'", (m) => (m.name = "hello-"), "name"],
    ["zero vCPUs", (m) => (m.resources.vcpu = 0), "resources.vcpu"],
    ["257 vCPUs", (m) => (m.resources.vcpu = 257), "resources.vcpu"],
    ["fractional vCPUs", (m) => (m.resources.vcpu = 1.5), "resources.vcpu"],
    ["vCPUs as a string", (m) => (m.resources.vcpu = "1"), "resources.vcpu"],
    ["15 MiB of memory", (m) => (m.resources.memoryMiB = 15), "resources.memoryMiB"],
    ["more than 1 TiB of memory", (m) => (m.resources.memoryMiB = 1_048_577), "resources.memoryMiB"],
    ["no disk", (m) => (m.resources.diskGiB = 0), "resources.diskGiB"],
    ["more than 64 TiB of disk", (m) => (m.resources.diskGiB = 65_537), "resources.diskGiB"],
    ["an unknown workload type", (m) => (m.workload.type = "qemu"), "workload.type"],
    ["a command path", (m) => (m.workload.command = "/usr/bin/node"), "workload.command"],
    ["a relative command path", (m) => (m.workload.command = "../node"), "workload.command"],
    ["a command that looks like an option", (m) => (m.workload.command = "-e"), "workload.command"],
    ["a 65-character command", (m) => (m.workload.command = "x".repeat(65)), "workload.command"],
    ["65 args", (m) => (m.workload.args = Array.from({ length: 65 }, () => "a")), "workload.args"],
    ["an arg over 4096 characters", (m) => (m.workload.args = ["a".repeat(4097)]), "workload.args.0"],
    ["a NUL in an arg", (m) => (m.workload.args = ["a\0b"]), "workload.args.0"],
    ["a lowercase env name", (m) => (m.workload.env = { path: "x" }), "workload.env.path"],
    ["an env name starting with a digit", (m) => (m.workload.env = { "1A": "x" }), "workload.env.1A"],
    ["setting PORT", (m) => (m.workload.env = { PORT: "80" }), "workload.env.PORT"],
    ["setting NOVACRON_VM_ID", (m) => (m.workload.env = { NOVACRON_VM_ID: "1" }), "workload.env.NOVACRON_VM_ID"],
    ["a non-string env value", (m) => (m.workload.env = { A: 1 }), "workload.env.A"],
    [
      "65 env variables",
      (m) => (m.workload.env = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, "v"]))),
      "workload.env",
    ],
    ["an unknown key in the workload", (m) => (m.workload.image = "x"), "workload"],
    ["17 ports", (m) => (m.ports = Array.from({ length: 17 }, (_, i) => ({ name: `p${i}`, protocol: "tcp" }))), "ports"],
    ["udp ports", (m) => (m.ports = [{ name: "dns", protocol: "udp" }]), "ports.0.protocol"],
    ["duplicate port names", (m) => (m.ports = [{ name: "http", protocol: "tcp" }, { name: "http", protocol: "tcp" }]), "ports"],
    ["a port without a name", (m) => (m.ports = [{ protocol: "tcp" }]), "ports.0.name"],
  ];
  for (const [what, change, path] of rejections) {
    test(`rejects ${what} at "${path}"`, () => {
      assert.equal(firstIssue(change), path);
    });
  }
});
