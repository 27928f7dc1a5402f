// The NovaCron Hardhat tasks, registered in hardhat.config.ts. Each action lives in its own file
// and is loaded only when its task runs. Options that have no sensible default are typed
// STRING_WITHOUT_DEFAULT and checked (with a clear message) by the action itself.
import { task } from "hardhat/config";
import { ArgumentType } from "hardhat/types/arguments";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { OwnerActionArgs } from "../lib/vm-actions.ts";

const FROM = "Sending account: an address or an account index of the node (e.g. 5)";

/** vm:stop, vm:start and vm:terminate take the same options: the VM id and, optionally, the sender. */
function ownerVmTask(name: string, description: string, action: () => Promise<{ default: (args: OwnerActionArgs, hre: HardhatRuntimeEnvironment) => unknown }>) {
  return task(name, description)
    .addOption({ name: "id", description: "VM id (required)", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined })
    .addOption({
      name: "from",
      description: `${FROM} (default: the VM's owner, when the node holds its key)`,
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .setAction(action)
    .build();
}

type Action = (args: Record<string, string | undefined>, hre: HardhatRuntimeEnvironment) => unknown;
type Option = [name: string, description: string];

/** A task whose options are all optional strings, checked by the action; `load` picks the action lazily. */
function simpleTask(name: string, description: string, options: Option[], load: () => Promise<Action>) {
  let t = task(name, description);
  for (const [option, text] of options) {
    t = t.addOption({ name: option, description: text, type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined });
  }
  return t.setAction(async () => ({ default: await load() })).build();
}
const market = () => import("./market.ts");
const gov = () => import("./governance.ts");
const ID: Option = ["id", "VM id (required)"];
const SENDER: Option = ["from", FROM];

/** Marketplace and governance tasks (issue 3). */
const marketTasks = [
  simpleTask("order:open", "Open an order: publish the manifest, escrow a deposit; providers in --regions bid until the window closes", [
    ["manifest", "Manifest JSON file (required)"],
    ["maxPrice", "Highest price accepted, NCC wei per second (required)"],
    ["regions", "Allowed regions, comma-separated (default: any)"],
    ["deposit", "NCC to escrow (default 100)"],
    ["ipfs", "IPFS (Kubo RPC) URL (default: $NOVACRON_IPFS_URL or http://127.0.0.1:5001)"],
    SENDER,
  ], async () => (await market()).orderOpen),
  simpleTask("order:bid", "Bid on an open order as a provider's operator", [ID, ["price", "NCC wei per second (required)"], SENDER], async () => (await market()).orderBid),
  simpleTask("order:award", "After the bid window: lease the order to the lowest bid, the earliest on a tie (anyone)", [ID, SENDER], async () => (await market()).orderAward),
  simpleTask("order:accept", "Owner: lease the order to bid --index now", [ID, ["index", "Bid index (default 0)"], SENDER], async () => (await market()).orderAccept),
  simpleTask("order:cancel", "Owner: cancel an order that was not awarded, for a full refund", [ID, SENDER], async () => (await market()).orderCancel),
  simpleTask("vm:topup", "Owner: add to a VM's deposit (revives a Suspended VM within its grace period)", [ID, ["amount", "NCC to add (required)"], SENDER], async () => (await market()).vmTopUp),
  simpleTask("vm:migrate", "Owner: move a VM to --provider (or to a new open order); the old one closes when the new one runs", [
    ID,
    ["provider", "Target provider (default: an open order)"],
    ["regions", "Open order: allowed regions"],
    ["maxPrice", "Highest price, wei per second: the open order's maximum, or the most --provider may charge (default: its current quote)"],
    ["deposit", "NCC for the new lease (default 100)"],
    SENDER,
  ], async () => (await market()).vmMigrate),
  simpleTask("vm:expire", "Anyone: expire a VM whose provider missed the provisioning deadline (refund + slash)", [ID, SENDER], async () => (await market()).vmExpire),
  simpleTask("vm:close", "Anyone: close a Suspended VM after its grace period, or a reclaimed VM after its notice", [ID, SENDER], async () => (await market()).vmClose),
  simpleTask("provider:exit", "Operator: announce reclaiming a lease; billing stops after the exit notice", [ID, SENDER], async () => (await market()).providerExit),
  simpleTask("provider:set-operator", "Provider owner: nominate a new operator key (none withdraws a nomination); it takes over once it accepts (sent here when this network holds the key)", [
    ["operator", "New operator: address or account index, or none (required)"],
    SENDER,
  ], async () => (await import("./provider-operator.ts")).providerSetOperator),
  simpleTask("provider:accept-operator", "Operator key: accept the nomination of --provider and become its operator", [
    ["provider", "Provider (owner address or account index) that nominated the key (required)"],
    ["from", `${FROM} (default: the pending nominee, when the network holds its key)`],
  ], async () => (await import("./provider-operator.ts")).providerAcceptOperator),
  simpleTask("provider:stake", "Provider owner: add stake", [["amount", "NCC (required)"], SENDER], async () => (await market()).providerStake),
  simpleTask("provider:unstake", "Provider owner: start thawing stake (slashable until withdrawn)", [["amount", "NCC (required)"], SENDER], async () => (await market()).providerUnstake),
  simpleTask("provider:withdraw-stake", "Provider owner: withdraw thawed stake", [SENDER], async () => (await market()).providerWithdrawStake),
  simpleTask("fees:withdraw", "Anyone: send accrued platform fees to the treasury (the timelock)", [SENDER], async () => (await market()).feesWithdraw),
  simpleTask("gov:delegate", "Delegate CreditToken votes (to yourself by default); needed before voting", [["to", "Delegatee (default: the sender)"], SENDER], async () => (await gov()).govDelegate),
  simpleTask("gov:propose", "Propose new marketplace parameters through the Governor", [
    ["contract", '"vm" (fee, windows, treasury) or "provider" (minimumStake, thawPeriod, slashBps) (required)'],
    ["set", "key=value pairs, comma-separated, e.g. feeBps=200,gracePeriod=7200 (required)"],
    ["description", "Proposal description"],
    SENDER,
  ], async () => (await gov()).govPropose),
  simpleTask("gov:vote", "Vote on a proposal", [["id", "Proposal id (required)"], ["support", "for | against | abstain (default for)"], SENDER], async () => (await gov()).govVote),
  simpleTask("gov:queue", "Queue a succeeded proposal in the timelock", [["id", "Proposal id (required)"], SENDER], async () => (await gov()).govQueue),
  simpleTask("gov:execute", "Execute a queued proposal after the timelock delay", [["id", "Proposal id (required)"], SENDER], async () => (await gov()).govExecute),
];

export const novaCronTasks = [
  ...marketTasks,
  task("vm:request", "Request a VM: validate a manifest, publish it to IPFS, escrow a deposit (one tx with an EIP-2612 permit)")
    .addOption({
      name: "manifest",
      description: "Manifest JSON file (required), e.g. examples/hello.json; checked against the schema before anything is sent",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "provider",
      description: "Provider's owner address or account index (default: the demo provider, account #1)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "deposit",
      description: "NCC to escrow; running time is paid from it and the rest is refunded on terminate",
      type: ArgumentType.STRING,
      defaultValue: "100",
    })
    .addOption({
      name: "maxPrice",
      description: "Most NCC per second the tenant pays; the request fails if the provider's price is higher (default: its current quote, printed)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "from",
      description: `${FROM} (default: demo tenant, account #3)`,
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "ipfs",
      description: "IPFS (Kubo RPC API) URL to publish to (default: $NOVACRON_IPFS_URL or http://127.0.0.1:5001)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .setAction(() => import("./vm-request.ts"))
    .build(),

  task("vm:list", "List VMs with state, provider, deposit left, cost so far and price")
    .addOption({
      name: "owner",
      description: "Only VMs owned by this address or account index",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "provider",
      description: "Only VMs leased from this provider (owner address or account index)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .setAction(() => import("./vm-list.ts"))
    .build(),

  task("vm:status", "Show one VM: state, manifest CID, provider and operator, deposit, balance, paid, refunded, failure reason")
    .addOption({
      name: "id",
      description: "VM id (required), as printed by vm:request and vm:list",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .setAction(() => import("./vm-status.ts"))
    .build(),

  ownerVmTask("vm:stop", "Stop a Running VM (owner only); billing pauses", () => import("./vm-stop.ts")),

  ownerVmTask("vm:start", "Start a Stopped VM again (owner only); billing resumes when the provider reports Running", () => import("./vm-start.ts")),

  ownerVmTask("vm:terminate", "Terminate a VM for good (owner only); running time is paid and the rest of the deposit refunded", () => import("./vm-terminate.ts")),

  task("provider:register", "Register as a provider: approve and lock the stake, declare region, capacity, prices and the daemon's operator key")
    .addOption({
      name: "operator",
      description: "Operator address or account index (required): the daemon's hot key, not the sending (owner) account",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "region",
      description: "Region code (required), at most 31 bytes, e.g. eu-west-1",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({ name: "vcpu", description: "vCPUs offered (required), e.g. 16", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined })
    .addOption({
      name: "memory",
      description: "Memory offered in MiB (required), e.g. 32768",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({ name: "disk", description: "Disk offered in GiB (required), e.g. 500", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined })
    .addOption({
      name: "priceVcpu",
      description: "Price in NCC wei per vCPU per second (required); 600000000000000 = 0.0006 NCC",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "priceMemory",
      description: "Price in NCC wei per MiB of memory per second (required), e.g. 2500000000000",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "priceDisk",
      description: "Price in NCC wei per GiB of disk per second (required), e.g. 80000000000000",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "stake",
      description: "NCC to stake (default: the registry's minimum stake, 1000 NCC in the local deployment)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "metadata",
      description: "CID of a document describing the provider (optional)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "from",
      description: `${FROM}; it becomes the provider's owner (default: account #1)`,
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .setAction(() => import("./provider-register.ts"))
    .build(),

  task("provider:withdraw", "Withdraw a provider's settled earnings, optionally settling VMs first")
    .addOption({
      name: "settle",
      description: 'VM ids to settle first, comma-separated (e.g. 1,2,3), or "all" for every Running VM of the provider',
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({
      name: "from",
      description: "The provider's owner: an address or an account index of the node (default: the demo provider, account #1)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .setAction(() => import("./provider-withdraw.ts"))
    .build(),
];
