// policy:create — deploys a PolicyAccount (and its PolicyWriter library) with a policy file, and funds it.
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { resolveAddress, resolveSigner } from "../../lib/accounts.ts";
import { openNovaCron } from "../../lib/contracts.ts";
import { runTask, UserError } from "../../lib/errors.ts";
import { parseTokens } from "../../lib/format.ts";
import { writeRecord } from "../../lib/policy-account.ts";
import { buildPolicy, type PolicyJson } from "../../lib/policy.ts";
import { lintPolicy, MAX_CALLS_PER_OPERATION } from "../../lib/policy-lint.ts";
import { className, tokens } from "./shared.ts";

export interface PolicyCreateArgs {
  policy: string;
  fund: string;
  from: string | undefined;
  /** Refuse to deploy when the value lint warns (default: print the warnings and deploy). */
  strict?: boolean;
}

export interface PolicyCreateResult {
  account: string;
  writer: string;
  version: bigint;
  policyHash: string;
  /** The value lint's warnings (scripts/lib/policy-lint.ts), as printed. */
  warnings: string[];
}

export default async function policyCreate(args: PolicyCreateArgs, hre: HardhatRuntimeEnvironment) {
  return await runTask(hre, async (): Promise<PolicyCreateResult> => {
    const s = await openNovaCron(hre);
    let json: PolicyJson;
    try {
      json = JSON.parse(await readFile(args.policy, "utf8")) as PolicyJson;
    } catch (error) {
      throw new UserError(`Cannot read the policy file ${args.policy}: ${(error as Error).message}`, "Start from examples/policy.json.");
    }
    const members: Record<string, string> = {};
    for (const [name, text] of Object.entries(json.members ?? {})) members[name] = await resolveAddress(s.ethers, text, `member ${name}`);
    // Members resolved up front (account indexes need the node); the builder then sees addresses only.
    const built = buildPolicy({ ...json, members }, {
      contracts: { VmRegistry: s.addresses.vmRegistry, CreditToken: s.addresses.creditToken, ProviderRegistry: s.addresses.providerRegistry },
      resolveMember: (t) => {
        const a = members[t] ?? t;
        if (!/^0x[0-9a-fA-F]{40}$/.test(a)) throw new UserError(`Unknown member "${t}": name it under "members" with an address or an account index (#10).`);
        return a;
      },
    });
    // The value lint, before anything is sent: a class that can move more than the account's transfer class allows.
    const warnings = lintPolicy(json).warnings.map((w) => w.message);
    if (warnings.length > 0) {
      console.error(`WARNING: policy ${args.policy} lets a class move more value than its transfer rule allows (per call; an operation batches up to ${MAX_CALLS_PER_OPERATION} calls):`);
      for (const w of warnings) console.error(`  - ${w}`);
      if (args.strict === true) {
        throw new UserError(
          `Refusing to create the account: the policy lint found ${warnings.length} warning(s) (--strict).`,
          "Bound each value-moving argument with an \"le\" condition (see docs/policy.md, \"Value lint\"), or drop --strict to create it anyway.",
        );
      }
      console.error("Creating the account anyway; pass --strict to refuse.");
    }
    const sender = await resolveSigner(s.ethers, args.from, "deployer");
    const lib = await s.ethers.deployContract("PolicyWriter", [], sender);
    await lib.waitForDeployment();
    const writer = await lib.getAddress();
    const account = await s.ethers.deployContract("PolicyAccount", [sender.address], { signer: sender, libraries: { PolicyWriter: writer } });
    await account.waitForDeployment();
    const address = await account.getAddress();
    const receipt = await (await (account.connect(sender) as typeof account).getFunction("initialize")(built.spec)).wait();
    const amount = parseTokens(args.fund, "--fund");
    if (amount > 0n) await (await s.creditToken.connect(sender).transfer(address, amount)).wait();
    await writeRecord(hre, s.chainId, address, {
      policyFile: path.resolve(args.policy),
      hash: built.hash,
      actions: built.actions,
      createdAtBlock: receipt!.blockNumber,
    });
    console.log(`PolicyAccount ${address} (policy version 1, hash ${built.hash})`);
    for (const c of built.spec.classes) {
      console.log(`  ${className(c.name)}: ${c.threshold} of ${c.signers.length}, delay ${c.delay} s, ${c.rules.length} rule(s)`);
    }
    console.log(`  recovery: all ${built.spec.recovery.signers.length}, delay ${built.spec.recovery.delay} s`);
    if (amount > 0n) console.log(`Funded with ${tokens(amount)}.`);
    console.log(`See it with \`npx hardhat policy:show --account ${address}\`.`);
    return { account: address, writer, version: 1n, policyHash: built.hash, warnings };
  });
}
