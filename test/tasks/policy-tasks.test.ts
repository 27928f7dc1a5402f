// The policy:* and agent:* tasks, run in-process as the CLI runs them, against a JSON-RPC server (Hardhat's
// in-process chain served over HTTP, like `hardhat node`) with the NovaCron deployment and the demo provider.
import assert from "node:assert/strict";
import { runTask, taskHreFor, taskValue } from "./run-task.ts";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import hre from "hardhat";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { JsonRpcServer, NetworkConnection } from "hardhat/types/network";
import { getContracts } from "../../scripts/lib/contracts.ts";
import type { NovaCronAddresses } from "../../scripts/lib/deployment.ts";
import { deployNovaCron, setupDemo } from "../../scripts/setup-demo.ts";
import type { PolicyCreateResult } from "../../scripts/tasks/policy/create.ts";
import type { PolicyShowResult } from "../../scripts/tasks/policy/show.ts";
import type { ProposeResult } from "../../scripts/tasks/policy/shared.ts";
import type { PolicyApproveResult, SignatureFile } from "../../scripts/tasks/policy/approve.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const TOKEN = 10n ** 18n;

describe("policy:* and agent:* tasks against a JSON-RPC node", function () {
  this.timeout(180_000);

  let tmp: string;
  let rpc: JsonRpcServer;
  let taskHre: HardhatRuntimeEnvironment;
  let connection: NetworkConnection;
  let addresses: NovaCronAddresses;
  let account: string;

  const run = <T>(name: string, args: Record<string, unknown> = {}) => runTask<T>(taskHre, name, args);
  const ok = taskValue;
  async function advance(seconds: number) {
    await connection.provider.request({ method: "evm_increaseTime", params: [seconds] });
    await connection.provider.request({ method: "evm_mine", params: [] });
  }

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), "novacron-policy-tasks-"));
    rpc = await hre.network.createServer("default", "127.0.0.1");
    const { port } = await rpc.listen();
    taskHre = await taskHreFor(port, tmp);
    connection = await taskHre.network.getOrCreate();
    addresses = (await deployNovaCron(connection, { paths: taskHre.config.paths, log: () => {} })).addresses;
    await setupDemo(connection.ethers, addresses, { log: () => {} });
  });

  after(async () => {
    await rpc?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it("policy:create deploys the example policy and policy:show lists it", async () => {
    const created = ok(await run<PolicyCreateResult>("policy:create", { policy: path.join(ROOT, "examples/policy.json"), fund: "1000" }));
    account = created.account;
    const r = await run<PolicyShowResult>("policy:show", { account });
    const shown = ok(r);
    assert.equal(shown.version, 1n);
    assert.equal(shown.policyHash, created.policyHash);
    assert.deepEqual(shown.classes.map((c) => [c.name, c.threshold, c.delay]), [
      ["small-vm", 1, 0n],
      ["large-vm-or-terminate", 2, 3600n],
      ["policy-change", 3, 86_400n],
      ["recovery", 3, 604_800n],
    ]);
    assert.equal(shown.members.length, 3);
    assert.match(r.out, /No pending operations/);
  });

  it("a 1-of-3 action is Ready at once; a 2-of-3 one takes a signature file and the 1 h delay", async () => {
    const approve = ok(await run<ProposeResult>("policy:propose", { account, to: "CreditToken", function: "approve(address,uint256)", args: JSON.stringify([addresses.vmRegistry, (1000n * TOKEN).toString()]), value: "0", recovery: false }));
    assert.equal(approve.className, "small-vm");
    assert.equal(approve.state, "Ready");
    ok(await run("policy:execute", { account, id: approve.opId.toString() }));

    const signers = await connection.ethers.getSigners();
    const provider = signers[1]!.address;
    const request = ok(await run<ProposeResult>("policy:propose", {
      account,
      to: "VmRegistry",
      function: "requestVm(address,bytes32,(uint32,uint32,uint32),uint256,uint256)",
      args: JSON.stringify([provider, "0x" + "ab".repeat(32), [8, 4096, 20], (10n ** 18n).toString(), (10n * TOKEN).toString()]),
      value: "0",
      recovery: false,
      from: "10",
    }));
    assert.equal(request.className, "large-vm-or-terminate");
    assert.equal(request.state, "Proposed");
    const file = path.join(tmp, "bob.sig.json");
    const signed = ok(await run<PolicyApproveResult>("policy:approve", { account, id: request.opId.toString(), sign: true, out: file, deadline: "1h", from: "11" }));
    assert.equal(signed.file, file);
    const sig = JSON.parse(await readFile(file, "utf8")) as SignatureFile;
    assert.equal(sig.primaryType, "RequestVm", "the wallet sees the named action");
    const submitted = ok(await run<PolicyApproveResult>("policy:approve", { account, id: request.opId.toString(), sign: false, deadline: "1d", signatures: file }));
    assert.equal(submitted.state, "Queued");
    const early = await run("policy:execute", { account, id: request.opId.toString() });
    assert.equal(early.result.success, false);
    assert.match(early.err, /Queued until/);
    await advance(3600);
    ok(await run("policy:execute", { account, id: request.opId.toString() }));
    const { vmRegistry } = await getContracts(connection.ethers, addresses);
    const vm = await vmRegistry.getVm(await vmRegistry.vmCount());
    assert.equal(vm.owner, account);
  });

  it("policy:cancel cancels; signature files for another operation are refused", async () => {
    const { vmRegistry } = await getContracts(connection.ethers, addresses);
    const vmId = await vmRegistry.vmCount();
    const p = ok(await run<ProposeResult>("policy:propose", { account, to: "VmRegistry", function: "terminateVm(uint256)", args: `[${vmId}]`, value: "0", recovery: false }));
    const other = path.join(tmp, "other.sig.json");
    const sig = JSON.parse(await readFile(path.join(tmp, "bob.sig.json"), "utf8")) as SignatureFile;
    await writeFile(other, JSON.stringify(sig));
    const refused = await run("policy:approve", { account, id: p.opId.toString(), sign: false, deadline: "1d", signatures: other });
    assert.equal(refused.result.success, false);
    assert.match(refused.err, /signs operation/);
    ok(await run("policy:cancel", { account, id: p.opId.toString() }));
    const shown = ok(await run<PolicyShowResult>("policy:show", { account }));
    assert.deepEqual(shown.pending, []);
  });

  it("agent:grant goes through the policy-change class; agent:revoke proposes the removal", async () => {
    const g = ok(await run<ProposeResult>("agent:grant", { account, agent: "13", classes: "small-vm", allowance: "50", period: "1d", expires: "30d", from: "10" }));
    assert.equal(g.className, "policy-change");
    ok(await run("policy:approve", { account, id: g.opId.toString(), sign: false, deadline: "1d", from: "11" }));
    const third = ok(await run<PolicyApproveResult>("policy:approve", { account, id: g.opId.toString(), sign: false, deadline: "1d", from: "12" }));
    assert.equal(third.state, "Queued");
    await advance(86_400);
    ok(await run("policy:execute", { account, id: g.opId.toString() }));
    const signers = await connection.ethers.getSigners();
    const policy = await connection.ethers.getContractAt("PolicyAccount", account);
    const agent = await policy.getFunction("getAgent")(signers[13]!.address);
    assert.equal(agent.active, true);
    assert.equal(agent.maxAllowance, 50n * TOKEN);
    const r = ok(await run<ProposeResult>("agent:revoke", { account, agent: "13" }));
    assert.equal(r.state, "Proposed");
  });

  it("explains unknown classes and bad ids", async () => {
    const bad = await run("agent:grant", { account, agent: "13", classes: "nope", allowance: "1", period: "1d", expires: "1d" });
    assert.equal(bad.result.success, false);
    assert.match(bad.err, /Unknown class "nope"/);
    const id = await run("policy:execute", { account, id: "x" });
    assert.match(id.err, /--id must be/);
  });
});
