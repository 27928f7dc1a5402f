// The chain connection every task uses.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import type { NetworkConnection } from "hardhat/types/network";

/**
 * The connection for the network chosen with `--network` (Hardhat's in-process network by default;
 * the `localhost` network honours NOVACRON_RPC_URL, see hardhat.config.ts).
 *
 * `getOrCreate` rather than `create`: on the CLI they behave the same (one task per process), and
 * when tasks run inside another program (tests, scripts) they share its connection, so they see
 * the same chain instead of a new, empty in-process one.
 */
export async function connect(hre: HardhatRuntimeEnvironment): Promise<NetworkConnection> {
  // No argument: the network manager defaults to --network, else the built-in "default" network.
  return await hre.network.getOrCreate();
}
