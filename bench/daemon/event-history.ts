// 100,000 VmRegistry events on a Hardhat node in seconds instead of hours: the VmRegistry address is
// given (hardhat_setCode) the code of a tiny contract that emits VmStateChanged logs in a loop. The
// logs carry VmRegistry's own event signature, address and topics (vmId, owner, provider), so the
// daemon's log sync, which filters by address and provider topic and reads only vmId from a log,
// takes them exactly as real ones. The registry's storage is untouched but its code is gone: run this
// last on a chain.
import { createRequire } from "node:module";
import { encodeFunctionData, type Hex } from "viem";
import type { TestStack } from "../../test/daemon-support/stack.ts";

const SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;
contract VmEventEmitter {
    event VmStateChanged(uint256 indexed vmId, address indexed owner, address indexed provider, uint8 from, uint8 to, uint8 reason);
    function emitHistory(uint256 firstVm, uint256 vms, uint8 perVm, address owner, address provider) external {
        for (uint256 vmId = firstVm; vmId < firstVm + vms; vmId++) {
            for (uint8 i = 0; i < perVm; i++) emit VmStateChanged(vmId, owner, provider, i, i + 1, 0);
        }
    }
}`;

const EMITTER_ABI = [
  {
    type: "function",
    name: "emitHistory",
    stateMutability: "nonpayable",
    inputs: [
      { name: "firstVm", type: "uint256" },
      { name: "vms", type: "uint256" },
      { name: "perVm", type: "uint8" },
      { name: "owner", type: "address" },
      { name: "provider", type: "address" },
    ],
    outputs: [],
  },
] as const;

function compileEmitter(): Hex {
  const solc = createRequire(import.meta.url)("solc") as { compile(input: string): string };
  const input = {
    language: "Solidity",
    sources: { "VmEventEmitter.sol": { content: SOURCE } },
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun", outputSelection: { "*": { "*": ["evm.deployedBytecode.object"] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as {
    errors?: Array<{ severity: string; formattedMessage: string }>;
    contracts: Record<string, Record<string, { evm: { deployedBytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((error) => error.severity === "error");
  if (errors.length > 0) throw new Error(errors.map((error) => error.formattedMessage).join("\n"));
  return `0x${output.contracts["VmEventEmitter.sol"]!.VmEventEmitter!.evm.deployedBytecode.object}`;
}

export type EventHistory = { events: number; vms: number; fromBlock: bigint; toBlock: bigint; generationMs: number };

/**
 * Emits `vms * perVm` provider events from the VmRegistry address, `vmsPerTx * perVm` per block, for VM ids
 * above every real one, then mines `burialBlocks` empty blocks so the history lies below the daemon's
 * unfinalized window, as a replay from a deployment block long ago does.
 */
export async function generateEventHistory(stack: TestStack, options: { vms: number; perVm: number; vmsPerTx: number; burialBlocks: number }): Promise<EventHistory> {
  const started = Date.now();
  const rpc = (method: string, params: unknown[]) => stack.publicClient.request({ method, params } as never) as Promise<unknown>;
  const { vmRegistry } = stack.deployment.contracts;
  const { providerOwner, deployer } = stack.deployment.accounts;
  await rpc("hardhat_setCode", [vmRegistry, compileEmitter()]);
  const firstVm = 1_000_000_000n;
  const fromBlock = (await stack.publicClient.getBlockNumber()) + 1n;
  for (let done = 0; done < options.vms; done += options.vmsPerTx) {
    const vms = Math.min(options.vmsPerTx, options.vms - done);
    const data = encodeFunctionData({ abi: EMITTER_ABI, functionName: "emitHistory", args: [firstVm + BigInt(done), BigInt(vms), options.perVm, stack.tenant, providerOwner] });
    // 16,000,000: under the per-transaction gas cap of 2^24 (EIP-7825); 4,000 events take about 11,000,000.
    const hash = (await rpc("eth_sendTransaction", [{ from: deployer, to: vmRegistry, data, gas: "0xf42400" }])) as Hex;
    const receipt = await stack.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success" || receipt.logs.length !== vms * options.perVm) throw new Error(`emitHistory in ${hash}: ${receipt.status}, ${receipt.logs.length} logs`);
  }
  const toBlock = await stack.publicClient.getBlockNumber();
  await stack.mine(options.burialBlocks);
  return { events: options.vms * options.perVm, vms: options.vms, fromBlock, toBlock, generationMs: Date.now() - started };
}

