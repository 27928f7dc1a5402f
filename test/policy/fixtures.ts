import { readFileSync } from "node:fs";
import path from "node:path";
import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkConnection } from "hardhat/types/network";
import { Interface, type BaseContract } from "ethers";
import type { PolicyAccount } from "../../types/ethers-contracts/index.ts";
import { deployFixture, type Fixture } from "../contracts/fixtures.ts";
import {
  actionFor,
  buildPolicy,
  digestOf,
  sortSignatures,
  typedOperation,
  type BuiltPolicy,
  type Call,
  type PolicyJson,
} from "../../scripts/lib/policy.ts";

/** The contract tests' policy: examples/policy.json as it was before the audit bounded what each class can spend
 * (fixture-policy.json); the tests exercise the account's mechanics, not the example's amounts. */
export const EXAMPLE_POLICY: PolicyJson = JSON.parse(
  readFileSync(path.resolve(import.meta.dirname, "fixture-policy.json"), "utf8"),
) as PolicyJson;

export const NCC = 10n ** 18n;
export const HOUR = 3600n;
export const DAY = 86_400n;
/** What the account holds after the fixture. */
export const ACCOUNT_FUNDS = 100_000n * NCC;

export interface PolicyFixture extends Fixture {
  account: PolicyAccount;
  accountAddress: string;
  writer: string;
  policy: BuiltPolicy;
  alice: HardhatEthersSigner;
  bob: HardhatEthersSigner;
  carol: HardhatEthersSigner;
  agent: HardhatEthersSigner;
  /** Three members sorted by address (the order signatures are submitted in). */
  sorted: HardhatEthersSigner[];
  chainId: bigint;
}

export function buildFor(f: { ethers: HardhatEthers; token: BaseContract; vms: BaseContract }, json: PolicyJson, signers: HardhatEthersSigner[], contracts: Record<string, string>): BuiltPolicy {
  return buildPolicy(json, {
    contracts,
    resolveMember: (t) => {
      const m = /^#(\d+)$/.exec(t);
      if (m !== null) {
        const s = signers[Number(m[1])];
        if (s === undefined) throw new Error(`no account ${t}`);
        return s.address;
      }
      return t;
    },
  });
}

/** Deploys the PolicyWriter library and a PolicyAccount initialised by `initializer`. */
export async function deployAccount(ethers: HardhatEthers, initializer: string): Promise<{ account: PolicyAccount; writer: string }> {
  const lib = await ethers.deployContract("PolicyWriter");
  const writer = await lib.getAddress();
  const account = (await ethers.deployContract("PolicyAccount", [initializer], {
    libraries: { PolicyWriter: writer },
  })) as unknown as PolicyAccount;
  return { account, writer };
}

/** The NovaCron fixture plus a PolicyAccount with the example policy (alice, bob, carol = accounts 10-12) holding tokens. */
export async function deployPolicyFixture(connection: NetworkConnection, json: PolicyJson = EXAMPLE_POLICY): Promise<PolicyFixture> {
  const f = await deployFixture(connection);
  const { ethers } = f;
  const signers = await ethers.getSigners();
  const [alice, bob, carol, agent] = [10, 11, 12, 13].map((i) => signers[i]!) as [
    HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner,
  ];
  const { account, writer } = await deployAccount(ethers, f.deployer.address);
  const accountAddress = await account.getAddress();
  const policy = buildFor(f, json, signers, {
    VmRegistry: await f.vms.getAddress(),
    CreditToken: await f.token.getAddress(),
  });
  await account.initialize(policy.spec);
  await f.token.transfer(accountAddress, ACCOUNT_FUNDS);
  const sorted = [alice, bob, carol].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
  const { chainId } = await ethers.provider.getNetwork();
  return { ...f, account, accountAddress, writer, policy, alice, bob, carol, agent, sorted, chainId };
}

/** A call of `contract.fn(...args)`. */
export async function callOf(contract: BaseContract, fn: string, args: unknown[], value = 0n): Promise<Call> {
  return { target: await contract.getAddress(), value, data: contract.interface.encodeFunctionData(fn, args) };
}

export const policyInterface = (f: PolicyFixture): Interface => f.account.interface;

/**
 * EIP-712 signatures of `signers` over `calls` (named action when the policy has one), sorted by signer.
 * Checks the typed data against the contract's own digest first.
 */
export async function signOperation(
  f: PolicyFixture,
  signers: HardhatEthersSigner[],
  calls: Call[],
  nonce: bigint,
  deadline: bigint,
  opts: { version?: bigint; chainId?: bigint; account?: string; generic?: boolean } = {},
): Promise<{ signer: string; signature: string }[]> {
  const version = opts.version ?? (await f.account.policyVersion())[0];
  const action = opts.generic === true ? undefined : actionFor(f.policy.actions, f.accountAddress, calls);
  const op = typedOperation(
    { chainId: opts.chainId ?? f.chainId, account: opts.account ?? f.accountAddress },
    calls,
    nonce,
    version,
    deadline,
    action,
  );
  if (opts.chainId === undefined && opts.account === undefined && opts.generic !== true) {
    const onChain = await f.account.operationDigest(calls, nonce, version, deadline);
    if (onChain !== digestOf(op)) throw new Error(`typed data digest ${digestOf(op)} differs from the contract's ${onChain}`);
  }
  const sigs = await Promise.all(
    signers.map(async (s) => ({ signer: s.address, signature: await s.signTypedData(op.domain, op.types, op.message) })),
  );
  return sortSignatures(sigs);
}

export const RESOURCES_SMALL = { vcpu: 4n, memoryMiB: 4_096n, diskGiB: 50n };
export const RESOURCES_LARGE = { vcpu: 8n, memoryMiB: 8_192n, diskGiB: 100n };
