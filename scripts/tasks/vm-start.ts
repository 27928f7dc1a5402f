// vm:start — see scripts/lib/vm-actions.ts.
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";
import { runOwnerAction, type OwnerActionArgs } from "../lib/vm-actions.ts";

export default async function vmStart(args: OwnerActionArgs, hre: HardhatRuntimeEnvironment) {
  return await runOwnerAction("start", args, hre);
}
