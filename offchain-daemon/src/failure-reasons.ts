/**
 * Reason codes a provider reports on-chain with `VmRegistry.reportFailed`.
 * The contract stores and emits the code without interpreting it (any non-zero
 * value is accepted) so new codes never need a contract upgrade; this table is
 * the one place that gives them meaning, and docs/manifest.md repeats it for users.
 */
export const FailureReason = {
  /** The manifest CID could not be fetched from IPFS before the timeout. */
  ManifestNotFound: 1,
  /** The manifest block is larger than the daemon's size limit. */
  ManifestTooLarge: 2,
  /** The manifest bytes are not UTF-8 JSON. */
  ManifestNotJson: 3,
  /** The manifest JSON does not match the manifest schema. */
  ManifestInvalid: 4,
  /** The manifest's resources differ from the resources escrowed on-chain. */
  ManifestResourceMismatch: 5,
  /** The driver could not create or start the workload. */
  WorkloadStartFailed: 6,
  /** The workload kept exiting on its own (three restarts) instead of running. */
  WorkloadExited: 7,
} as const;

export type FailureReasonCode = (typeof FailureReason)[keyof typeof FailureReason];

export function failureReasonName(code: number): string {
  const entry = Object.entries(FailureReason).find(([, value]) => value === code);
  return entry ? entry[0] : `Unknown(${code})`;
}
