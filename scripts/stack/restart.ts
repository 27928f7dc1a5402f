// How the launcher brings back a child that may crash without taking the stack down with it (the provider
// daemon): restart after a delay that doubles with each crash in a row, and starts again from the shortest
// once the child has stayed up for a while.
import type { StackChild } from "./processes.ts";

export type RestartPolicy = {
  /** Delay before the first restart after a crash. */
  firstDelayMs: number;
  /** The delay doubles per crash in a row up to this. */
  maxDelayMs: number;
  /** A child that ran this long without crashing counts as healthy again: the next crash waits `firstDelayMs`. */
  stableAfterMs: number;
};

export const DAEMON_RESTART_POLICY: RestartPolicy = { firstDelayMs: 1_000, maxDelayMs: 30_000, stableAfterMs: 60_000 };

export type RestartEvent = { name: string; exit: number | string; attempt: number; delayMs: number; logFile: string };

/**
 * Keeps one child running: `start` spawns it, and each exit that `stopping()` does not explain is followed,
 * after the policy's delay, by a new `start`. `onStart` sees every child (the first and each restart),
 * `onExit` each crash before its restart is scheduled.
 */
export function supervise(options: {
  start: () => StackChild;
  policy: RestartPolicy;
  stopping: () => boolean;
  onStart: (child: StackChild) => void;
  onExit: (event: RestartEvent) => void;
}): { current: () => StackChild } {
  let attempt = 0;
  let child: StackChild;

  function launch(): void {
    const started = Date.now();
    const next = options.start();
    child = next;
    options.onStart(next);
    void next.exited.then((exit) => {
      if (options.stopping()) return;
      attempt = Date.now() - started >= options.policy.stableAfterMs ? 1 : attempt + 1;
      const delayMs = Math.min(options.policy.firstDelayMs * 2 ** (attempt - 1), options.policy.maxDelayMs);
      options.onExit({ name: next.name, exit, attempt, delayMs, logFile: next.logFile });
      setTimeout(() => {
        if (!options.stopping()) launch();
      }, delayMs);
    });
  }

  launch();
  return { current: () => child };
}
