// Every deployable contract stays well under EIP-170's code size limit. Reads the artifacts of the compile
// that `npm test` runs first.
import { expect } from "chai";
import { BUDGET_BYTES, deployedSizes, HEADROOM_PERCENT } from "./contract-sizes.ts";

describe("contract sizes", function () {
  it(`every contract's runtime code stays ${HEADROOM_PERCENT} % under EIP-170 (at most ${BUDGET_BYTES} bytes)`, function () {
    const sizes = deployedSizes();
    // The two that outgrew the budget before must be among those measured, or the check proves nothing.
    for (const name of ["contracts/VmRegistry.sol:VmRegistry", "contracts/policy/PolicyAccount.sol:PolicyAccount"]) {
      expect(sizes.map((contract) => contract.name), "artifacts missing: run `npx hardhat compile` first").to.include(name);
    }
    const over = sizes.filter((contract) => contract.bytes > BUDGET_BYTES).map((contract) => `${contract.name}: ${contract.bytes} bytes`);
    expect(over, `over the ${BUDGET_BYTES}-byte budget`).to.deep.equal([]);
  });
});
