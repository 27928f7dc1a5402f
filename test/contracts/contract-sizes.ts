// The runtime code size of every deployable contract, read from the artifacts of the last compile, and the
// budget each must stay under. Shared by test/contracts/ContractSizes.test.ts and `npm run bench:gas`.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** EIP-170: the largest runtime code a contract may have, in bytes. */
export const EIP170_LIMIT_BYTES = 24_576;
/** The headroom every contract keeps below that limit, so that the next fix has room to land without a split. */
export const HEADROOM_PERCENT = 10;
export const BUDGET_BYTES = Math.floor((EIP170_LIMIT_BYTES * (100 - HEADROOM_PERCENT)) / 100);

const ARTIFACTS = join(import.meta.dirname, "../../artifacts/contracts");

type Artifact = { contractName: string; sourceName: string; deployedBytecode: string };
export type ContractSize = { name: string; bytes: number };

/** `source:Contract` and its runtime bytes, largest first; interfaces (no code) are left out. */
export function deployedSizes(): ContractSize[] {
  return readdirSync(ARTIFACTS, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".json") && !file.endsWith(".dbg.json"))
    .map((file) => JSON.parse(readFileSync(join(ARTIFACTS, file), "utf8")) as Artifact)
    .map((artifact) => ({ name: `${artifact.sourceName}:${artifact.contractName}`, bytes: (artifact.deployedBytecode.length - 2) / 2 }))
    .filter((contract) => contract.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes);
}
