// The NovaCron Hardhat tasks, run in-process exactly as the CLI runs them (`hre.tasks.getTask(...).run`),
// against a real JSON-RPC server (Hardhat's in-process chain served over HTTP, like `hardhat node`)
// and a real IPFS RPC API (the embedded node's Kubo RPC server), plus the scripts/lib pieces.
import assert from "node:assert/strict";
import { runTask, taskHreFor, taskValue } from "./run-task.ts";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { AbiCoder, Interface, parseUnits, ZeroAddress } from "ethers";
import hre from "hardhat";
import { createHardhatRuntimeEnvironment } from "hardhat/hre";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { JsonRpcServer, NetworkConnection } from "hardhat/types/network";
import { CID } from "multiformats/cid";
import userConfig from "../../hardhat.config.ts";
import { createEmbeddedStore, type EmbeddedStore } from "../../offchain-daemon/src/ipfs/embedded.ts";
import { startKuboRpcServer, type KuboRpcServer } from "../../offchain-daemon/src/ipfs/kubo-rpc-server.ts";
import { MANIFEST_MAX_BYTES } from "../../offchain-daemon/src/manifest/schema.ts";
import { devPrivateKey, resolveAddress, resolveSigner } from "../../scripts/lib/accounts.ts";
import { getContracts } from "../../scripts/lib/contracts.ts";
import { DEPLOY_COMMAND, readDeployedAddresses, type NovaCronAddresses } from "../../scripts/lib/deployment.ts";
import {
  command,
  decodeRevertData,
  describeError,
  findRevertData,
  novaCronAbis,
  UserError,
  type Abi,
  type ErrorReport,
  type TaskResult,
} from "../../scripts/lib/errors.ts";
import {
  bytes32ToRegion,
  formatDuration,
  formatPrice,
  formatTokens,
  parseTokens,
  regionToBytes32,
  renderTable,
  VM_STATES,
  vmStateName,
} from "../../scripts/lib/format.ts";
import { DEFAULT_IPFS_URL, resolveIpfsUrl } from "../../scripts/lib/ipfs.ts";
import { loadManifestFile } from "../../scripts/lib/manifest.ts";
import { deployNovaCron, DEMO_DEFAULTS, setupDemo } from "../../scripts/setup-demo.ts";
import type { VmListRow } from "../../scripts/tasks/vm-list.ts";
import type { VmRequestResult } from "../../scripts/tasks/vm-request.ts";
import type { VmStatus } from "../../scripts/tasks/vm-status.ts";
import type { OwnerActionResult } from "../../scripts/lib/vm-actions.ts";
import type { ProviderWithdrawResult } from "../../scripts/tasks/provider-withdraw.ts";
import type { ProviderRegisterResult } from "../../scripts/tasks/provider-register.ts";

const TOKEN = 10n ** 18n;
const ROOT = path.resolve(import.meta.dirname, "../..");
const HELLO = path.join(ROOT, "examples/hello.json");

let abis: Abi[];

before(async () => {
  abis = await novaCronAbis(hre);
  assert.equal(abis.length, 6, "compile the contracts first (npx hardhat compile)");
});

describe("scripts/lib/format", () => {
  it("formats and parses token amounts", () => {
    assert.equal(formatTokens(1_234_500_000_000_000_000_000n), "1234.5 NCC");
    assert.equal(formatPrice(TOKEN / 1000n), "0.001 NCC/s (3.6 NCC/h)");
    assert.equal(parseTokens("100", "--deposit"), 100n * TOKEN);
    assert.equal(parseTokens("0.5", "--deposit"), TOKEN / 2n);
    assert.equal(parseTokens("1_000", "--deposit"), 1000n * TOKEN);
    assert.throws(() => parseTokens("abc", "--deposit"), (e: unknown) => e instanceof UserError && /--deposit must be a token amount/.test(e.message));
    assert.throws(() => parseTokens("-1", "--deposit"), UserError);
    assert.throws(() => parseTokens("0.0000000000000000001", "--deposit"), /more than 18 decimals/);
  });

  it("names VM states in the order of the VmState enum", () => {
    assert.deepEqual(VM_STATES, [
      "None", "Requested", "Provisioning", "Running", "Stopped", "Starting", "Failed", "Terminated", "Bidding", "Suspended",
    ]);
    assert.equal(vmStateName(7n), "Terminated");
    assert.equal(vmStateName(42), "Unknown(42)");
  });

  it("converts regions to bytes32 and back", () => {
    const code = regionToBytes32("eu-west-1");
    assert.equal(code, "0x" + Buffer.from("eu-west-1").toString("hex").padEnd(64, "0"));
    assert.equal(bytes32ToRegion(code), "eu-west-1");
    assert.throws(() => regionToBytes32("x".repeat(32)), /longer than 31 bytes/);
    assert.throws(() => regionToBytes32(" "), /must not be empty/);
  });

  it("renders durations and tables", () => {
    assert.equal(formatDuration(100_000n), "1d 3h 46m");
    assert.equal(formatDuration(59n), "59s");
    assert.equal(renderTable(["A", "BB"], [["1", "x"], ["22", "yyy"]]), "A   BB\n--  ---\n1   x\n22  yyy");
  });
});

describe("scripts/lib/errors", () => {
  const vmRegistry = () => new Interface(abis[0] as Abi);

  it("decodes custom errors with enum names", () => {
    const data = vmRegistry().encodeErrorResult("VmRegistryUnexpectedState", [3, 7]);
    const decoded = decodeRevertData(data, abis);
    assert.equal(decoded?.line, "VmRegistryUnexpectedState(vmId=3, current=Terminated)");
    assert.equal(decoded?.rawArgs["vmId"], 3n);
  });

  it("decodes struct arguments", () => {
    const data = vmRegistry().encodeErrorResult("VmRegistryExceedsCapacity", [ZeroAddress, [64, 128, 1], [16, 32768, 200]]);
    assert.equal(
      decodeRevertData(data, abis)?.line,
      `VmRegistryExceedsCapacity(provider=${ZeroAddress}, requested={vcpu=64, memoryMiB=128, diskGiB=1}, available={vcpu=16, memoryMiB=32768, diskGiB=200})`,
    );
  });

  it("decodes the token's errors that bubble up through the registries", () => {
    const token = new Interface(abis[2] as Abi);
    const data = token.encodeErrorResult("ERC20InsufficientBalance", [ZeroAddress, 1n, 2n * TOKEN]);
    const report = describeError({ code: "CALL_EXCEPTION", action: "estimateGas", data }, abis, { network: "localhost" });
    assert.equal(report.message, `The transaction would revert: ERC20InsufficientBalance(sender=${ZeroAddress}, balance=1, needed=2000000000000000000)`);
    assert.match(report.hint ?? "", /holds 0.000000000000000001 NCC but 2.0 NCC are needed/);
  });

  it("finds revert data nested in provider errors and ignores unknown selectors", () => {
    const data = vmRegistry().encodeErrorResult("VmRegistryUnknownVm", [9]);
    assert.equal(findRevertData(new Error("outer", { cause: { error: { data } } })), data);
    assert.equal(findRevertData({ info: { error: { data: { data } } } }), data);
    assert.equal(decodeRevertData("0xdeadbeef", abis), undefined);
    const report = describeError({ data: "0xdeadbeef" + AbiCoder.defaultAbiCoder().encode(["uint256"], [1]).slice(2) }, abis);
    assert.match(report.message, /unknown data 0xdeadbeef/);
  });

  it("gives hints that name the network", () => {
    const data = vmRegistry().encodeErrorResult("VmRegistryUnknownVm", [9]);
    const report = describeError({ action: "call", data }, abis, { network: "localhost" });
    assert.equal(report.message, "The call reverted: VmRegistryUnknownVm(vmId=9)");
    assert.equal(report.hint, "There is no VM 9. List the VMs with `npx hardhat vm:list --network localhost`.");
    assert.equal(command({}, "vm:list"), "npx hardhat vm:list");
  });

  it("reports user errors and unreachable nodes without a stack", () => {
    assert.deepEqual(describeError(new UserError("bad", "do this"), abis), { message: "bad", hint: "do this", contractError: undefined });
    const refused = new Error("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:8545") });
    const report = describeError(refused, abis);
    assert.match(report.message, /Could not reach a service/);
    assert.match(report.hint ?? "", /npm start/);
  });
});

describe("scripts/lib/deployment, manifest, ipfs, accounts", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "novacron-lib-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("says how to deploy when the deployment is missing or incomplete", async () => {
    await assert.rejects(readDeployedAddresses(dir, 31337), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /NovaCron is not deployed on chain 31337: .*chain-31337.deployed_addresses\.json does not exist/);
      assert.match(e.hint ?? "", /npm start/);
      assert.ok(e.hint?.includes(DEPLOY_COMMAND));
      return true;
    });
    const chainDir = path.join(dir, "deployments", "chain-1");
    await mkdir(chainDir, { recursive: true });
    await writeFile(path.join(chainDir, "deployed_addresses.json"), JSON.stringify({ "NovaCron#CreditToken": ZeroAddress }));
    await assert.rejects(readDeployedAddresses(dir, 1), /has no "NovaCron#ProviderRegistry"/);
    const a = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
    await writeFile(
      path.join(chainDir, "deployed_addresses.json"),
      JSON.stringify({
        "NovaCron#CreditToken": a,
        "NovaCron#ProviderRegistry": a,
        "NovaCron#VmRegistry": a,
        "NovaCron#NovaCronGovernor": a,
        "NovaCron#NovaCronTimelock": a,
      }),
    );
    const addresses = await readDeployedAddresses(dir, 1n);
    assert.equal(addresses.vmRegistry, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
  });

  it("validates manifests before anything is sent", async () => {
    const { manifest, bytes } = await loadManifestFile(HELLO);
    assert.equal(manifest.name, "hello");
    assert.deepEqual(new Uint8Array(await readFile(HELLO)), bytes);

    const bad = path.join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ version: 1, name: "Bad Name", resources: { vcpu: 0, memoryMiB: 128 }, workload: { type: "process", command: "/bin/sh" } }));
    await assert.rejects(loadManifestFile(bad), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /is invalid \(4 problems\)/);
      for (const field of ["name:", "resources.vcpu:", "resources.diskGiB:", "workload.command:"]) assert.ok(e.message.includes(field), field);
      return true;
    });
    const huge = path.join(dir, "huge.json");
    await writeFile(huge, " ".repeat(MANIFEST_MAX_BYTES + 1));
    await assert.rejects(loadManifestFile(huge), /providers accept at most 65536 bytes/);
    await writeFile(bad, "{nope");
    await assert.rejects(loadManifestFile(bad), /not valid UTF-8 JSON/);
    await assert.rejects(loadManifestFile(path.join(dir, "missing.json")), /does not exist/);
  });

  it("picks the IPFS URL from --ipfs, then NOVACRON_IPFS_URL, then the default", () => {
    assert.equal(resolveIpfsUrl("http://h:1", { NOVACRON_IPFS_URL: "http://e:2" }), "http://h:1");
    assert.equal(resolveIpfsUrl(undefined, { NOVACRON_IPFS_URL: "http://e:2" }), "http://e:2");
    assert.equal(resolveIpfsUrl(undefined, {}), DEFAULT_IPFS_URL);
    assert.throws(() => resolveIpfsUrl("not a url", {}), UserError);
  });

  it("knows Hardhat's public development keys", () => {
    assert.equal(devPrivateKey(2), "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
  });
});

describe("tasks against a JSON-RPC node and an IPFS node", function () {
  this.timeout(180_000);

  let tmp: string;
  let rpc: JsonRpcServer;
  let store: EmbeddedStore;
  let ipfs: KuboRpcServer;
  let taskHre: HardhatRuntimeEnvironment;
  let connection: NetworkConnection;
  let addresses: NovaCronAddresses;

  const run = <T>(name: string, args: Record<string, unknown> = {}) => runTask<T>(taskHre, name, args);

  const ok = taskValue;

  function failed(r: { result: TaskResult<unknown> }): ErrorReport {
    if (r.result.success) assert.fail("the task should have failed");
    return r.result.error;
  }

  async function operator(vmId: bigint, ...steps: ("reportProvisioning" | "reportRunning")[]) {
    const signers = await connection.ethers.getSigners();
    const { vmRegistry } = await getContracts(connection.ethers, addresses, signers[2]);
    for (const step of steps) await (await vmRegistry[step](vmId)).wait();
  }

  async function advance(seconds: number) {
    await connection.provider.request({ method: "evm_increaseTime", params: [seconds] });
    await connection.provider.request({ method: "evm_mine", params: [] });
  }

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), "novacron-tasks-"));
    // Like `npx hardhat node`: the in-process chain behind a JSON-RPC server on a free port.
    rpc = await hre.network.createServer("default", "127.0.0.1");
    const { port } = await rpc.listen();
    store = await createEmbeddedStore({ directory: path.join(tmp, "ipfs") });
    ipfs = await startKuboRpcServer({ store, port: 0 });
    taskHre = await taskHreFor(port, tmp);
    connection = await taskHre.network.getOrCreate();
    const deployment = await deployNovaCron(connection, { paths: taskHre.config.paths, log: () => {} });
    addresses = deployment.addresses;
    await setupDemo(connection.ethers, addresses, { log: () => {} });
  });

  after(async () => {
    await ipfs?.close();
    await store?.close();
    await rpc?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it("deployNovaCron writes what the tasks read, and it and setupDemo are idempotent", async () => {
    const recorded = await readDeployedAddresses(taskHre.config.paths.ignition, 31337);
    assert.deepEqual(recorded, addresses);
    const again = await deployNovaCron(connection, { paths: taskHre.config.paths, log: () => {} });
    assert.deepEqual(again.addresses, addresses);
    assert.equal(again.deployBlock, 1);
    const block = await connection.ethers.provider.getBlockNumber();
    const accounts = await setupDemo(connection.ethers, addresses, { log: () => {} });
    assert.equal(await connection.ethers.provider.getBlockNumber(), block, "a second setupDemo sends nothing");
    const { creditToken, providerRegistry } = await getContracts(connection.ethers, addresses);
    for (const tenant of accounts.tenants) assert.equal(await creditToken.balanceOf(tenant), DEMO_DEFAULTS.tenantFunding);
    const [registered, , price] = await providerRegistry.quote(accounts.providerOwner, { vcpu: 1, memoryMiB: 128, diskGiB: 1 });
    assert.ok(registered);
    assert.equal(price, TOKEN / 1000n, "hello.json costs 0.001 NCC per second at the demo provider");
  });

  it("vm:list says there is nothing yet", async () => {
    const r = await run<VmListRow[]>("vm:list");
    assert.deepEqual(ok(r), []);
    assert.match(r.out, /No VMs yet/);
  });

  it("vm:request publishes the manifest, pays by permit in one transaction and prints the VM id", async () => {
    const nonceBefore = await connection.ethers.provider.getTransactionCount((await connection.ethers.getSigners())[3]!.address);
    const r = await run<VmRequestResult>("vm:request", { manifest: HELLO, ipfs: ipfs.url });
    const value = ok(r);
    assert.equal(value.vmId, 1n);
    assert.match(r.out, /^VM id: 1$/m);
    assert.match(r.out, new RegExp(`CID: +${value.cid}`));
    assert.match(r.out, new RegExp(`requestVm: tx ${value.txHash}`));
    // Without --max-price the request carries the provider's quote read just before sending, and says so.
    assert.match(r.out, /^Max price: .*the provider's current quote/m);
    const { vmRegistry } = await getContracts(connection.ethers, addresses);
    assert.equal(value.maxPricePerSecond, (await vmRegistry.getVm(value.vmId)).pricePerSecond);
    const nonceAfter = await connection.ethers.provider.getTransactionCount(value.owner);
    assert.equal(nonceAfter - nonceBefore, 1, "one transaction: the permit replaces the approval");
    const stored = await store.getRaw(CID.parse(value.cid), { signal: AbortSignal.timeout(5000), maxBytes: MANIFEST_MAX_BYTES });
    assert.deepEqual(stored, new Uint8Array(await readFile(HELLO)));
  });

  it("vm:request refuses invalid input before sending anything", async () => {
    const block = await connection.ethers.provider.getBlockNumber();
    const bad = path.join(tmp, "bad.json");
    await writeFile(bad, JSON.stringify({ version: 1 }));
    assert.match(failed(await run("vm:request", { manifest: bad, ipfs: ipfs.url })).message, /is invalid/);
    assert.match(failed(await run("vm:request", { ipfs: ipfs.url })).message, /--manifest is required/);
    assert.match(failed(await run("vm:request", { manifest: HELLO, deposit: "0", ipfs: ipfs.url })).message, /more than 0/);
    assert.match(failed(await run("vm:request", { manifest: HELLO, deposit: "20000", ipfs: ipfs.url })).message, /holds 9900.0 NCC but the deposit needs 20000.0 NCC/);
    assert.match(failed(await run("vm:request", { manifest: HELLO, provider: "5", ipfs: ipfs.url })).message, /is not a registered provider/);
    assert.match(failed(await run("vm:request", { manifest: HELLO, maxPrice: "0.000000000000000001", ipfs: ipfs.url })).message, /above --max-price/);
    const down = failed(await run("vm:request", { manifest: HELLO, ipfs: "http://127.0.0.1:1" }));
    assert.match(down.message, /Could not publish the manifest to the IPFS node at http:\/\/127.0.0.1:1/);
    assert.match(down.hint ?? "", /npm start/);
    assert.equal(await connection.ethers.provider.getBlockNumber(), block);
  });

  it("vm:status shows every field, with the manifest CID", async () => {
    const r = await run<VmStatus>("vm:status", { id: "1" });
    const status = ok(r);
    assert.equal(status.state, "Requested");
    assert.equal(status.deposit, 100n * TOKEN);
    assert.equal(status.balance, 100n * TOKEN);
    assert.equal(status.pricePerSecond, TOKEN / 1000n);
    assert.equal(status.region, "local-dev-1");
    const signers = await connection.ethers.getSigners();
    assert.equal(status.operator, signers[2]!.address);
    for (const label of ["state", "manifest CID", "operator", "balance left", "paid (cost so far)", "refunded", "failure reason"]) {
      assert.match(r.out, new RegExp(`^  ${label.replace(/[()]/g, "\\$&")} +`, "m"), label);
    }
    assert.match(r.out, new RegExp(status.manifestCid));
  });

  it("vm:status decodes unknown ids and rejects bad ones", async () => {
    const unknown = failed(await run("vm:status", { id: "99" }));
    assert.equal(unknown.message, "The contract reverted: VmRegistryUnknownVm(vmId=99)");
    assert.equal(unknown.contractError?.name, "VmRegistryUnknownVm");
    assert.match(unknown.hint ?? "", /vm:list --network localhost/);
    assert.match(failed(await run("vm:status", {})).message, /--id is required/);
    assert.match(failed(await run("vm:status", { id: "one" })).message, /--id must be a whole number/);
  });

  it("vm:terminate refunds a Requested VM in full; a second terminate is decoded", async () => {
    const r = await run<OwnerActionResult>("vm:terminate", { id: "1" });
    const value = ok(r);
    assert.equal(value.from, "Requested");
    assert.equal(value.to, "Terminated");
    assert.equal(value.refunded, 100n * TOKEN);
    assert.match(r.out, /VM 1: Requested -> Terminated/);
    assert.match(r.out, /Refunded to 0x[0-9a-fA-F]{40}: 100.0 NCC/);

    const again = failed(await run("vm:terminate", { id: "1" }));
    assert.match(again.message, /VmRegistryUnexpectedState\(vmId=1, current=Terminated\)$/);
  });

  it("runs a VM through stop and start, lists it, and lets the provider withdraw", async () => {
    const vmId = ok(await run<VmRequestResult>("vm:request", { manifest: HELLO, ipfs: ipfs.url, from: "4", deposit: "10" })).vmId;
    await operator(vmId, "reportProvisioning", "reportRunning");
    await advance(1000);

    const notOwner = failed(await run("vm:stop", { id: String(vmId), from: "3" }));
    assert.equal(notOwner.contractError?.name, "VmRegistryNotOwner");
    assert.match(notOwner.hint ?? "", /Pass --from 0x/);

    const stopped = ok(await run<OwnerActionResult>("vm:stop", { id: String(vmId) }));
    assert.deepEqual([stopped.from, stopped.to], ["Running", "Stopped"]);
    // The provider's share after the deployment's default 1% platform fee.
    assert.ok(stopped.settled >= 990n * (TOKEN / 1000n), "about 1000 s at 0.001 NCC/s were paid, less 1%");

    const started = ok(await run<OwnerActionResult>("vm:start", { id: String(vmId) }));
    assert.deepEqual([started.from, started.to], ["Stopped", "Starting"]);
    await operator(vmId, "reportRunning");
    await advance(100);

    const signers = await connection.ethers.getSigners();
    const mine = ok(await run<VmListRow[]>("vm:list", { owner: signers[4]!.address }));
    assert.deepEqual(mine.map((row) => [row.id, row.state]), [[vmId, "Running"]]);
    const all = await run<VmListRow[]>("vm:list", { provider: "1" });
    assert.equal(ok(all).length, 2);
    assert.match(all.out, /^ID +STATE +OWNER +PROVIDER +DEPOSIT LEFT +COST SO FAR +PRICE \(NCC\/s\)$/m);

    const withdrawn = ok(await run<ProviderWithdrawResult>("provider:withdraw", { settle: "all" }));
    assert.ok(withdrawn.settled >= 99n * (TOKEN / 1000n));
    assert.equal(withdrawn.amount, stopped.settled + withdrawn.settled);
    const nothing = await run<ProviderWithdrawResult>("provider:withdraw", {});
    assert.equal(ok(nothing).amount, 0n);
    assert.match(nothing.out, /Nothing to withdraw/);
    assert.match(failed(await run("provider:withdraw", { settle: "1,x" })).message, /--settle takes VM ids/);
  });

  it("marketplace tasks: order:open, order:bid, order:award, vm:topup, provider:exit, vm:close, order:cancel, vm:migrate", async () => {
    type R = { txHash: string; vmId?: bigint; events: { name: string; args: Record<string, unknown> }[] };
    const names = (r: R) => r.events.map((e) => e.name);
    const order = ok(await run<R>("order:open", { manifest: HELLO, ipfs: ipfs.url, maxPrice: "2000000000000000", regions: "local-dev-1", deposit: "10" }));
    assert.deepEqual(names(order), ["VmOrderOpened", "VmStateChanged"]);
    const id = String(order.vmId);
    const bid = ok(await run<R>("order:bid", { id, price: "1000000000000000" }));
    assert.deepEqual(names(bid), ["VmBidPlaced"]);
    const early = failed(await run("order:award", { id }));
    assert.equal(early.contractError?.name, "VmRegistryBiddingOpen");
    await advance(301);
    const awarded = ok(await run<R>("order:award", { id, from: "5" }));
    assert.deepEqual(names(awarded), ["VmAwarded", "VmStateChanged"]);
    await operator(order.vmId!, "reportProvisioning", "reportRunning");
    assert.deepEqual(names(ok(await run<R>("vm:topup", { id, amount: "1" }))), ["VmSettled", "VmToppedUp"]);
    assert.deepEqual(names(ok(await run<R>("provider:exit", { id }))), ["VmSettled", "VmReclaimAnnounced"]);
    assert.equal(failed(await run("vm:close", { id })).contractError?.name, "VmRegistryNotClosable");
    await advance(86_401);
    // The deposit ran out before the notice ended: the close settles and terminates, nothing is left to refund.
    assert.ok(names(ok(await run<R>("vm:close", { id }))).includes("VmStateChanged"));

    const second = ok(await run<R>("order:open", { manifest: HELLO, ipfs: ipfs.url, maxPrice: "2000000000000000", deposit: "1" }));
    ok(await run<R>("order:bid", { id: String(second.vmId), price: "1000000000000000" }));
    const accepted = ok(await run<R>("order:accept", { id: String(second.vmId), index: "0" }));
    assert.deepEqual(names(accepted), ["VmAwarded", "VmStateChanged"]);
    const migrated = ok(await run<R>("vm:migrate", { id: String(second.vmId), provider: "1", deposit: "1" }));
    assert.ok(names(migrated).includes("VmMigrationRequested"));
    await advance(3_601);
    const expired = ok(await run<R>("vm:expire", { id: String(second.vmId) }));
    assert.ok(names(expired).includes("VmExpired"));
    const third = ok(await run<R>("order:open", { manifest: HELLO, ipfs: ipfs.url, maxPrice: "1", deposit: "1" }));
    assert.ok(names(ok(await run<R>("order:cancel", { id: String(third.vmId) }))).includes("VmRefunded"));
    assert.ok(names(ok(await run<R>("fees:withdraw", {}))).includes("FeesWithdrawn"));
  });

  it("stake tasks and governance tasks: stake, unstake, withdraw-stake; delegate, propose, vote, queue, execute", async () => {
    type R = { txHash: string; events: { name: string }[] };
    // The demo provider was slashed by the expiry above; bring its stake back above the minimum.
    const signers = await connection.ethers.getSigners();
    const { creditToken } = await getContracts(connection.ethers, addresses, signers[0]);
    await (await creditToken.transfer(signers[1]!.address, 200n * TOKEN)).wait();
    assert.deepEqual(ok(await run<R>("provider:stake", { amount: "150" })).events.map((e) => e.name), ["ProviderStakeAdded"]);
    assert.deepEqual(ok(await run<R>("provider:unstake", { amount: "1" })).events.map((e) => e.name), ["ProviderUnstakeRequested"]);
    assert.equal(failed(await run("provider:withdraw-stake", {})).contractError?.name, "ProviderRegistryStillThawing");
    await advance(7 * 86_400 + 1);
    assert.deepEqual(ok(await run<R>("provider:withdraw-stake", {})).events.map((e) => e.name), ["ProviderStakeWithdrawn"]);

    type P = { proposalId: bigint; state: string };
    ok(await run("gov:delegate", {}));
    const proposed = ok(await run<P>("gov:propose", { contract: "vm", set: "feeBps=150", description: "fee 1.5%" }));
    assert.equal(proposed.state, "Pending");
    await connection.provider.request({ method: "evm_mine", params: [] });
    await connection.provider.request({ method: "evm_mine", params: [] });
    assert.equal(ok(await run<P>("gov:vote", { id: String(proposed.proposalId), support: "for" })).state, "Active");
    for (let i = 0; i < 51; i++) await connection.provider.request({ method: "evm_mine", params: [] });
    assert.equal(ok(await run<P>("gov:queue", { id: String(proposed.proposalId) })).state, "Queued");
    await advance(3_601);
    assert.equal(ok(await run<P>("gov:execute", { id: String(proposed.proposalId) })).state, "Executed");
    const { vmRegistry } = await getContracts(connection.ethers, addresses);
    assert.equal((await vmRegistry.parameters()).feeBps, 150n);
    assert.match(failed(await run("gov:propose", { contract: "x", set: "a=1" })).message, /--contract must be/);
  });

  it("provider:register approves, registers, has a local operator key accept, and refuses a taken operator before spending gas", async () => {
    const taken = failed(await run("provider:register", {
      operator: "2", region: "eu-west-1", vcpu: "4", memory: "8192", disk: "100",
      priceVcpu: "1", priceMemory: "1", priceDisk: "1", from: "4",
    }));
    assert.match(taken.message, /already operates provider/);

    const r = await run<ProviderRegisterResult>("provider:register", {
      operator: "6", region: "eu-west-1", vcpu: "4", memory: "8192", disk: "100",
      priceVcpu: "500000000000000", priceMemory: "1000000000000", priceDisk: "10000000000000", stake: "1500", from: "4",
    });
    const value = ok(r);
    assert.equal(value.stake, parseUnits("1500", 18));
    const { providerRegistry } = await getContracts(connection.ethers, addresses);
    const provider = await providerRegistry.getProvider(value.provider);
    // The node holds account #6's key, so the task had the nominated operator accept.
    assert.equal(value.accepted, true);
    assert.match(value.acceptTxHash ?? "", /^0x[0-9a-f]{64}$/);
    assert.equal(provider.operator, value.operator);
    assert.equal(await providerRegistry.providerOfOperator(value.operator), value.provider);
    assert.match(r.out, /accepted: it now operates provider/);
    assert.equal(bytes32ToRegion(provider.region), "eu-west-1");
    assert.equal(provider.capacity.memoryMiB, 8192n);
    assert.match(r.out, /^approve 1500.0 NCC: tx 0x/m);
    assert.match(r.out, /^Registered provider 0x/m);

    const again = failed(await run("provider:register", {
      operator: "7", region: "eu-west-1", vcpu: "4", memory: "8192", disk: "100",
      priceVcpu: "1", priceMemory: "1", priceDisk: "1", from: "4",
    }));
    assert.match(again.message, /already a registered provider/);
    assert.match(failed(await run("provider:register", { operator: "7", region: "eu", vcpu: "0", memory: "1", disk: "1", priceVcpu: "1", priceMemory: "1", priceDisk: "1", from: "5" })).message, /--vcpu must be at least 1/);
  });

  it("provider:register with a key the node does not hold prints the step; provider:set-operator and provider:accept-operator rotate the key", async () => {
    type O = import("../../scripts/tasks/provider-operator.ts").OperatorResult;
    const remote = "0x000000000000000000000000000000000000bEEF";
    const signers = await connection.ethers.getSigners();
    const { providerRegistry, creditToken } = await getContracts(connection.ethers, addresses);
    await (await creditToken.connect(signers[0]!).transfer(signers[9]!.address, 1_000n * TOKEN)).wait();
    const r = await run<ProviderRegisterResult>("provider:register", {
      operator: remote, region: "eu-west-1", vcpu: "4", memory: "8192", disk: "100",
      priceVcpu: "1", priceMemory: "1", priceDisk: "1", from: "9",
    });
    const value = ok(r);
    assert.equal(value.accepted, false);
    assert.match(r.out, new RegExp(`provider:accept-operator --provider ${value.provider} --from ${remote} --network localhost`));
    assert.equal(await providerRegistry.operatorOf(value.provider), ZeroAddress);
    assert.equal(await providerRegistry.pendingOperatorOf(value.provider), remote);

    // A key the node holds: nominated and accepted in one task.
    const rotated = ok(await run<O>("provider:set-operator", { operator: "10", from: "9" }));
    assert.deepEqual([rotated.operator, rotated.pendingOperator, rotated.accepted], [signers[10]!.address, ZeroAddress, true]);
    // A remote key: nominated, the old operator serves on; the nominee accepts with provider:accept-operator.
    const pending = ok(await run<O>("provider:set-operator", { operator: remote, from: "9" }));
    assert.deepEqual([pending.operator, pending.pendingOperator, pending.accepted], [signers[10]!.address, remote, false]);
    ok(await run<O>("provider:set-operator", { operator: "none", from: "9" }));
    assert.equal(await providerRegistry.pendingOperatorOf(value.provider), ZeroAddress);
    ok(await run<O>("provider:set-operator", { operator: "11", from: "9" })); // nominated and accepted
    assert.equal(await providerRegistry.operatorOf(value.provider), signers[11]!.address);

    // The contract's refusals, decoded with a hint.
    const notNominated = failed(await run("provider:accept-operator", { provider: "9", from: "12" }));
    assert.equal(notNominated.contractError?.name, "ProviderRegistryNotNominated");
    assert.match(notNominated.hint ?? "", /provider:set-operator --operator 0x/);
    assert.match(failed(await run("provider:accept-operator", { provider: "9" })).message, /has no pending operator nomination/);
    assert.match(failed(await run("provider:set-operator", { operator: "2", from: "9" })).message, /already operates provider/);
    assert.match(failed(await run("provider:set-operator", { operator: "12", from: "13" })).message, /is not a registered provider/);
    // Nominated directly on the contract (as from another machine): provider:accept-operator defaults to the nominee.
    await (await providerRegistry.connect(signers[9]!).setOperator(signers[12]!.address)).wait();
    const accepted = ok(await run<O>("provider:accept-operator", { provider: "9" }));
    assert.deepEqual([accepted.operator, accepted.pendingOperator], [signers[12]!.address, ZeroAddress]);
  });

  it("resolves --from and address options by index or address", async () => {
    const signers = await connection.ethers.getSigners();
    assert.equal((await resolveSigner(connection.ethers, "#5", "tenant")).address, signers[5]!.address);
    assert.equal((await resolveSigner(connection.ethers, undefined, "tenant")).address, signers[3]!.address);
    assert.equal(await resolveAddress(connection.ethers, signers[7]!.address.toLowerCase(), "--owner"), signers[7]!.address);
    await assert.rejects(resolveSigner(connection.ethers, "0x000000000000000000000000000000000000dEaD", "tenant"), /is not an account this network can sign for/);
  });

  it("tells a user who forgot --network localhost what to do", async () => {
    const inProcess = await createHardhatRuntimeEnvironment(
      { ...userConfig, paths: { ...userConfig.paths, ignition: path.join(tmp, "ignition") } },
      {},
      ROOT,
    );
    const { error, log } = console;
    const printed: string[] = [];
    console.error = (...parts: unknown[]) => void printed.push(parts.join(" "));
    console.log = () => {};
    try {
      const result = (await inProcess.tasks.getTask("vm:list").run({})) as TaskResult<unknown>;
      assert.equal(result.success, false);
    } finally {
      console.error = error;
      console.log = log;
    }
    assert.match(printed.join("\n"), /in-process network "default", which starts empty[\s\S]*--network localhost/);
  });
});
