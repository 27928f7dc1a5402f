import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { ServiceStartError, startService } from "./service.ts";

const USAGE = "usage: novacron-daemon --config FILE   (environment variables NOVACRON_* override file fields; see docs/daemon.md)";

async function main(): Promise<number> {
  let configPath: string | undefined;
  try {
    const { values } = parseArgs({ options: { config: { type: "string" }, help: { type: "boolean", short: "h" } } });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    configPath = values.config;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }

  let config;
  try {
    config = loadConfig(configPath, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }

  const logger = createLogger(config.logLevel);
  let service;
  try {
    service = await startService(config, logger);
  } catch (error) {
    if (error instanceof ServiceStartError) {
      console.error(`novacron-daemon: ${error.message}`);
      return 2;
    }
    throw error;
  }

  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  logger.info({ msg: "stopping" });
  await service.stop();
  return 0;
}

process.exitCode = await main();
