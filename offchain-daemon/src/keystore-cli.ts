// `novacron-daemon keystore new|import --out FILE [--password-file FILE]`: writes the operator key's
// encrypted keystore. The key never comes from the command line (other users' `ps` shows arguments):
// `new` makes one, `import` reads it from a pipe or, on a terminal, a hidden prompt.
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Hex } from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { privateKeyProblem } from "./config.ts";
import { encryptKeystore, passwordFromFile } from "./keystore.ts";
import { readHidden, readStdin } from "./prompt.ts";

export const KEYSTORE_USAGE = [
  "usage: novacron-daemon keystore new --out FILE [--password-file FILE]",
  "       novacron-daemon keystore import --out FILE [--password-file FILE]   (the key from stdin, or typed when on a terminal)",
].join("\n");

/** The shortest password accepted for a new keystore: the file may be copied, and then only the password protects the key. */
const MIN_PASSWORD_LENGTH = 8;

/** A problem the user fixes: printed as one line, exit code 2. */
export class KeystoreCliError extends Error {
  override readonly name = "KeystoreCliError";
}

async function newPassword(passwordFile: string | undefined): Promise<string> {
  let password: string;
  if (passwordFile !== undefined) {
    try {
      password = passwordFromFile(readFileSync(passwordFile, "utf8"));
    } catch (error) {
      throw new KeystoreCliError(`cannot read --password-file ${resolve(passwordFile)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  } else {
    if (!process.stdin.isTTY) throw new KeystoreCliError("no terminal to ask for the password on: pass --password-file FILE");
    password = await readHidden("password for the new keystore: ");
    if ((await readHidden("the same password again: ")) !== password) throw new KeystoreCliError("the two passwords differ; nothing was written");
  }
  if (password.length < MIN_PASSWORD_LENGTH) throw new KeystoreCliError(`the password has ${password.length} characters; use at least ${MIN_PASSWORD_LENGTH}`);
  return password;
}

async function importedKey(): Promise<Hex> {
  const key = process.stdin.isTTY ? await readHidden("operator private key (0x + 64 hex digits): ") : await readStdin();
  const problem = privateKeyProblem(key);
  // The key itself is never repeated back, not even in an error.
  if (problem !== undefined) throw new KeystoreCliError(`the key read from ${process.stdin.isTTY ? "the terminal" : "stdin"} is not usable: ${problem}`);
  return key as Hex;
}

function write(out: string, content: string): void {
  try {
    // `wx`: never overwrite a keystore, which may hold the only copy of a key.
    writeFileSync(out, content, { flag: "wx", mode: 0o600 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new KeystoreCliError(code === "EEXIST" ? `${resolve(out)} exists; choose another --out (a keystore is never overwritten)` : `cannot write ${resolve(out)}: ${code ?? String(error)}`);
  }
}

/** Runs `keystore <args>`; resolves with the exit code. */
export async function keystoreCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: "string" }, "password-file": { type: "string" } } });
  const [action, ...extra] = positionals;
  if ((action !== "new" && action !== "import") || extra.length > 0 || values.out === undefined) throw new KeystoreCliError(KEYSTORE_USAGE);
  const key = action === "new" ? generatePrivateKey() : await importedKey();
  const password = await newPassword(values["password-file"]);
  write(values.out, `${JSON.stringify(encryptKeystore(key, password), null, 2)}\n`);
  console.log(`wrote ${resolve(values.out)} for operator ${privateKeyToAddress(key)}`);
  console.log('set it in the daemon config as "operatorKeystore": { "file": ..., "passwordFile": ... } (or leave passwordFile out to type the password at start)');
  return 0;
}
