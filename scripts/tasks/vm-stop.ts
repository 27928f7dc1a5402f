// vm:stop — see scripts/lib/vm-actions.ts.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { runOwnerAction, type OwnerActionArgs } from "../lib/vm-actions.ts";

export default async function vmStop(args: OwnerActionArgs, hre: HardhatRuntimeEnvironment) {
  return await runOwnerAction("stop", args, hre);
}
