import { parseArgs } from "node:util";
import { ConfigError, loadConfig, PasswordNeededError } from "./config.ts";
import { KEYSTORE_USAGE, keystoreCommand, KeystoreCliError } from "./keystore-cli.ts";
import { readHidden } from "./prompt.ts";
import { createLogger } from "./log.ts";
import { ServiceStartError, startService } from "./service.ts";

const USAGE = `usage: novacron-daemon --config FILE   (environment variables NOVACRON_* override file fields; see docs/daemon.md)\n${KEYSTORE_USAGE}`;

/** The config, asking for the keystore's password on the terminal when the config names no password file. */
async function readConfig(configPath: string | undefined) {
  try {
    return loadConfig(configPath, process.env);
  } catch (error) {
    if (!(error instanceof PasswordNeededError) || !process.stdin.isTTY) throw error;
    return loadConfig(configPath, process.env, { password: await readHidden(`password for ${error.keystoreFile}: `) });
  }
}

async function main(): Promise<number> {
  if (process.argv[2] === "keystore") {
    try {
      return await keystoreCommand(process.argv.slice(3));
    } catch (error) {
      if (!(error instanceof KeystoreCliError) && !(error instanceof TypeError)) throw error;
      console.error(error.message);
      return 2;
    }
  }
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
    config = await readConfig(configPath);
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
