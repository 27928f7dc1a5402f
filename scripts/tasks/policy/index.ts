// The PolicyAccount tasks, registered in hardhat.config.ts beside the NovaCron tasks. Each action lives in
// its own file and is loaded only when its task runs. See docs/policy.md for a walk-through.
import { task } from "hardhat/config";
import { ArgumentType } from "hardhat/types/arguments";

const ACCOUNT = {
  name: "account",
  description: "PolicyAccount address (default: the last one policy:create deployed on this network)",
  type: ArgumentType.STRING_WITHOUT_DEFAULT,
  defaultValue: undefined,
} as const;
const ID = { name: "id", description: "Operation id (required), as printed by policy:propose", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined } as const;
const FROM = (what: string) =>
  ({ name: "from", description: `Sending account: an address or an account index of the node (default: ${what})`, type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined }) as const;
const NONCE = {
  name: "nonce",
  description: "Operation nonce, which is also its id (default: random); any unused number works",
  type: ArgumentType.STRING_WITHOUT_DEFAULT,
  defaultValue: undefined,
} as const;

export const policyTasks = [
  task("policy:create", "Deploy a PolicyAccount with a policy file (classes, signers, thresholds, delays) and fund it")
    .addOption({ name: "policy", description: "Policy JSON file", type: ArgumentType.STRING, defaultValue: "examples/policy.json" })
    .addOption({ name: "fund", description: "NCC to send to the new account from the sender", type: ArgumentType.STRING, defaultValue: "0" })
    .addOption(FROM("account #0, which also initialises the account"))
    .addFlag({ name: "strict", description: "Refuse to create the account when the value lint warns (a class can move more than the transfer class allows)" })
    .setAction(() => import("./create.ts"))
    .build(),

  task("policy:show", "Show a PolicyAccount: version, policy hash, classes, members, pending operations")
    .addOption(ACCOUNT)
    .setAction(() => import("./show.ts"))
    .build(),

  task("policy:propose", "Propose a call (or a batch with --calls) through the policy; the sender's approval counts")
    .addOption(ACCOUNT)
    .addOption({ name: "to", description: "Target: VmRegistry, CreditToken, self, or an address", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined })
    .addOption({
      name: "function",
      description: 'Function signature, e.g. "terminateVm(uint256)"',
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({ name: "args", description: "Arguments as a JSON array, e.g. '[3]'", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined })
    .addOption({ name: "value", description: "Wei sent with the call", type: ArgumentType.STRING, defaultValue: "0" })
    .addOption({
      name: "calls",
      description: "JSON file with a batch: [{ to, function, args, value }]; the batch takes its strictest class",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption(NONCE)
    .addFlag({ name: "recovery", description: "Propose under the recovery class (every recovery signer, long delay)" })
    .addOption(FROM("the first signer of the class this network holds a key for"))
    .setAction(() => import("./propose.ts"))
    .build(),

  task("policy:approve", "Approve an operation on-chain, or --sign a signature file, or submit --signatures together")
    .addOption(ACCOUNT)
    .addOption(ID)
    .addFlag({ name: "sign", description: "Write an EIP-712 signature file instead of sending a transaction" })
    .addOption({ name: "out", description: "Signature file to write with --sign (default: op-<id>-<signer>.sig.json)", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined })
    .addOption({ name: "deadline", description: "How long a --sign signature stays valid (e.g. 1h, 1d)", type: ArgumentType.STRING, defaultValue: "1d" })
    .addOption({
      name: "signatures",
      description: "Signature files to submit together, comma-separated (they must share one deadline)",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption(FROM("a signer of the class who has not approved yet; with --signatures, account #0"))
    .setAction(() => import("./approve.ts"))
    .build(),

  task("policy:execute", "Run a Ready operation (anyone may)")
    .addOption(ACCOUNT)
    .addOption(ID)
    .addOption(FROM("account #0"))
    .setAction(() => import("./execute.ts"))
    .build(),

  task("policy:cancel", "Cancel an operation (its proposer, or a guardian of its classes)")
    .addOption(ACCOUNT)
    .addOption(ID)
    .addOption(FROM("the proposer, when this network holds its key"))
    .setAction(() => import("./cancel.ts"))
    .build(),

  task("agent:grant", "Propose a scoped agent role: classes it may use alone, a refilling allowance, an expiry")
    .addOption(ACCOUNT)
    .addOption({ name: "agent", description: "Agent address or account index (required)", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined })
    .addOption({
      name: "classes",
      description: "Class names or indices the agent may use, comma-separated (required), e.g. small-vm",
      type: ArgumentType.STRING_WITHOUT_DEFAULT,
      defaultValue: undefined,
    })
    .addOption({ name: "allowance", description: "NCC the agent may spend per period (refills linearly)", type: ArgumentType.STRING, defaultValue: "100" })
    .addOption({ name: "period", description: "Refill period (e.g. 1h, 1d)", type: ArgumentType.STRING, defaultValue: "1d" })
    .addOption({ name: "expires", description: "How long the role lasts from now (e.g. 30d)", type: ArgumentType.STRING, defaultValue: "30d" })
    .addOption(NONCE)
    .addOption(FROM("the first signer of the class this network holds a key for"))
    .setAction(() => import("./agent-grant.ts"))
    .build(),

  task("agent:revoke", "Propose removing an agent's role")
    .addOption(ACCOUNT)
    .addOption({ name: "agent", description: "Agent address or account index (required)", type: ArgumentType.STRING_WITHOUT_DEFAULT, defaultValue: undefined })
    .addOption(NONCE)
    .addOption(FROM("the first signer of the class this network holds a key for"))
    .setAction(() => import("./agent-revoke.ts"))
    .build(),
];
