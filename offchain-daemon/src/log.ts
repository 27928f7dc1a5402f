import { pino } from "pino";
import type { DestinationStream, Logger as PinoLogger } from "pino";

export type Logger = PinoLogger;

/** Levels the daemon accepts, most to least severe; "silent" turns logging off. */
export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

/**
 * Keys whose values never reach a log line, at the top level and up to two
 * levels down (`{ config: { operatorKey } }`, `{ err: { cause: { privateKey } } }`).
 * The operator key signs on-chain reports; a leaked log would let anyone sign as
 * this provider.
 */
const secretKeys = ["operatorKey", "privateKey", "password"];
const redactPaths = secretKeys.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

/**
 * JSON has no bigint; pino would print a VM id as a bare number that every
 * JSON reader rounds to a double. Decimal strings keep uint256 ids exact.
 */
function bigintsToStrings(value: unknown, depth: number): unknown {
  if (typeof value === "bigint") return value.toString();
  if (depth === 0 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => bigintsToStrings(item, depth - 1));
  // Errors and class instances keep their identity so pino's serializers still see them.
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = bigintsToStrings(item, depth - 1);
  return out;
}

/**
 * Structured JSON logger. Log objects, not sentences:
 * `logger.info({ msg: "reconciled vm", vm_id, from_state, to_state })`.
 * @param level minimum level to write.
 * @param destination where lines go; default stdout.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      redact: { paths: redactPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        log: (object) => bigintsToStrings(object, 4) as Record<string, unknown>,
      },
    },
    destination,
  );
  // pino skips formatters for child bindings, so convert them on the way in.
  // Children inherit this method through their prototype, grandchildren too.
  const child = logger.child;
  logger.child = function (this: Logger, bindings, options) {
    return child.call(this, bigintsToStrings(bindings, 4) as typeof bindings, options);
  } as typeof child;
  return logger;
}
