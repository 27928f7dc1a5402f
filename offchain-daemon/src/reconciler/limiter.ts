/**
 * Runs at most `concurrency` tasks at once; the rest wait in arrival order.
 * One RPC endpoint, one driver and one machine serve every VM, so a pass over
 * thousands of VMs must not start thousands of reads and spawns together.
 */
export function createLimiter(concurrency: number) {
  let running = 0;
  const waiting: Array<() => void> = [];

  return async function limit<T>(task: () => Promise<T>): Promise<T> {
    if (running >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next task, or give it back.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
