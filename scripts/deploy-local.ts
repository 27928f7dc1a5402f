// Deploys NovaCron with Ignition and sets up the demo accounts on a local node:
//
//   npx hardhat run --network localhost scripts/deploy-local.ts
//
// Progress goes to stderr; stdout gets ONE JSON line for programs (npm start) to read:
// {"event":"deployed","chainId":31337,"rpcUrl":...,"contracts":{...},"deployBlock":N,"accounts":{...}}
// Safe to run again: a finished deployment and finished demo steps are skipped.
import hre from "hardhat";
import { devPrivateKey, ROLE_INDEX, TENANT_INDEXES } from "./lib/accounts.ts";
import { connect } from "./lib/network.ts";
import { deployNovaCron, setupDemo } from "./setup-demo.ts";
import { computeAddress } from "ethers";

const log = (line: string) => console.error(line);

const connection = await connect(hre);
const deployment = await deployNovaCron(connection, { log });
const accounts = await setupDemo(connection.ethers, deployment.addresses, { log });

/** Hardhat's public dev key for account `index`, when the node's account really is that key's. */
function publicDevKey(index: number, address: string): string | null {
  const key = devPrivateKey(index);
  return computeAddress(key) === address ? key : null;
}

const providerOperatorKey = publicDevKey(ROLE_INDEX.providerOperator, accounts.providerOperator);
if (providerOperatorKey === null) {
  log("warning: the node's accounts are not Hardhat's default dev accounts, so the operator key cannot be printed");
}

const rpcUrl = connection.networkConfig.type === "http" ? await connection.networkConfig.url.get() : null;
console.log(
  JSON.stringify({
    event: "deployed",
    chainId: deployment.chainId,
    rpcUrl,
    contracts: deployment.addresses,
    deployBlock: deployment.deployBlock,
    accounts: {
      deployer: accounts.deployer,
      providerOwner: accounts.providerOwner,
      providerOperator: accounts.providerOperator,
      providerOperatorKey,
      tenants: accounts.tenants,
      tenantKeys: accounts.tenants.map((address, i) => publicDevKey(TENANT_INDEXES[i]!, address)),
    },
    keysNote:
      "providerOperatorKey and tenantKeys are Hardhat's well-known development keys (mnemonic 'test test ... junk'): " +
      "public knowledge, for the local demo chain only; never send real funds to them.",
  }),
);
