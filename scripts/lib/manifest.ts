// Reads and validates a manifest file before anything is published or sent, with the same schema
// and size limit the provider daemon applies (offchain-daemon/src/manifest/).
import { readFile, stat } from "node:fs/promises";
import { MANIFEST_MAX_BYTES, ManifestSchema, type Manifest } from "../../offchain-daemon/src/manifest/schema.ts";
import { UserError } from "./errors.ts";

export interface ManifestFile {
  /** The exact bytes that get published: the daemon verifies the digest of these bytes. */
  bytes: Uint8Array;
  manifest: Manifest;
}

/** At most this many schema problems are listed; the rest are counted. */
const MAX_ISSUES_SHOWN = 10;

export async function loadManifestFile(file: string, maxBytes: number = MANIFEST_MAX_BYTES): Promise<ManifestFile> {
  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new UserError(`--manifest ${file} is not a file.`);
    size = info.size;
  } catch (error) {
    if (error instanceof UserError) throw error;
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new UserError(`--manifest ${file} does not exist.`, "See examples/hello.json for a manifest to start from.");
    }
    throw error;
  }
  // Checked before reading so a huge file is never loaded.
  if (size > maxBytes) {
    throw new UserError(
      `The manifest ${file} is ${size} bytes; providers accept at most ${maxBytes} bytes.`,
      "Shorten it (large scripts belong in the workload's image or a download, not in the manifest).",
    );
  }
  const bytes = new Uint8Array(await readFile(file));
  return { bytes, manifest: parseManifest(bytes, file) };
}

/** Decodes and validates manifest bytes; `source` names them in errors. */
export function parseManifest(bytes: Uint8Array, source: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new UserError(`The manifest ${source} is not valid UTF-8 JSON: ${(error as Error).message}`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues;
  const lines = issues
    .slice(0, MAX_ISSUES_SHOWN)
    .map((issue) => `    ${issue.path.length === 0 ? "(manifest)" : issue.path.join(".")}: ${issue.message}`);
  if (issues.length > MAX_ISSUES_SHOWN) lines.push(`    … and ${issues.length - MAX_ISSUES_SHOWN} more`);
  throw new UserError(
    `The manifest ${source} is invalid (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n${lines.join("\n")}`,
    "Fix the fields above; docs/manifest.md describes the format and examples/hello.json is a working example.",
  );
}
