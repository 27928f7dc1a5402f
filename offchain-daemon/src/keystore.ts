// The operator key at rest: an encrypted JSON keystore in the Web3 Secret Storage format (version 3), the
// one geth, ethers, Foundry's `cast wallet` and MetaMask exports read and write. A keystore file is input
// like any other: its KDF parameters are bounded before any work is done, so a hostile file cannot make the
// daemon allocate gigabytes or spin for hours.
import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes, randomUUID, scryptSync, timingSafeEqual } from "node:crypto";
import { bytesToHex, hexToBytes, keccak256, type Hex } from "viem";
import { privateKeyToAddress } from "viem/accounts";

/** scrypt work factor of the keystores this daemon writes: geth's "standard" setting (256 MiB, about a second). */
export const STANDARD_SCRYPT_N = 2 ** 18;
/** The largest scrypt N read (1 GiB of memory at r = 8); geth's own maximum setting is 2^18. */
const MAX_SCRYPT_N = 2 ** 20;
const MAX_SCRYPT_R = 16;
const MAX_SCRYPT_P = 4;
/** The most PBKDF2 iterations read; geth writes 262,144. */
const MAX_PBKDF2_ROUNDS = 10_000_000;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const DERIVED_KEY_BYTES = 32;
const CIPHER = "aes-128-ctr";
/** The first half of the derived key encrypts; the second half authenticates (the MAC). */
const CIPHER_KEY_BYTES = 16;

/** A keystore that cannot be opened, with one line that says why and what to do. */
export class KeystoreError extends Error {
  override readonly name = "KeystoreError";
  readonly reason: "wrong password" | "corrupt";
  constructor(reason: "wrong password" | "corrupt", message: string) {
    super(message);
    this.reason = reason;
  }
}

type ScryptParams = { dklen: number; n: number; r: number; p: number; salt: string };
type Pbkdf2Params = { dklen: number; c: number; prf: string; salt: string };

export type KeystoreV3 = {
  version: 3;
  id: string;
  address: string;
  crypto: {
    cipher: typeof CIPHER;
    cipherparams: { iv: string };
    ciphertext: string;
    kdf: "scrypt";
    kdfparams: ScryptParams;
    mac: string;
  };
};

const unhex = (value: string) => hexToBytes(`0x${value.replace(/^0x/, "")}`);
const hex = (bytes: Uint8Array) => bytesToHex(bytes).slice(2);

function mac(derivedKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return hexToBytes(keccak256(new Uint8Array([...derivedKey.subarray(CIPHER_KEY_BYTES, DERIVED_KEY_BYTES), ...ciphertext])));
}

function scrypt(password: string, params: ScryptParams): Uint8Array {
  const { n, r, p } = params;
  // Node refuses work above `maxmem` (32 MiB by default); scrypt needs 128 * N * r bytes, plus some.
  return scryptSync(password.normalize("NFKC"), unhex(params.salt), DERIVED_KEY_BYTES, { N: n, r, p, maxmem: 256 * n * r });
}

/** A password file's password: the whole file but one trailing newline, as `echo secret > file` writes it. */
export function passwordFromFile(text: string): string {
  return text.replace(/\r?\n$/, "");
}

/** Encrypts `privateKey` under `password`. `scryptN` below the standard is for tests only. */
export function encryptKeystore(privateKey: Hex, password: string, options: { scryptN?: number } = {}): KeystoreV3 {
  const kdfparams: ScryptParams = { dklen: DERIVED_KEY_BYTES, n: options.scryptN ?? STANDARD_SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P, salt: hex(randomBytes(32)) };
  const derivedKey = scrypt(password, kdfparams);
  const iv = randomBytes(16);
  const cipher = createCipheriv(CIPHER, derivedKey.subarray(0, CIPHER_KEY_BYTES), iv);
  const ciphertext = new Uint8Array([...cipher.update(hexToBytes(privateKey)), ...cipher.final()]);
  return {
    version: 3,
    id: randomUUID(),
    address: privateKeyToAddress(privateKey).slice(2).toLowerCase(),
    crypto: { cipher: CIPHER, cipherparams: { iv: hex(iv) }, ciphertext: hex(ciphertext), kdf: "scrypt", kdfparams, mac: hex(mac(derivedKey, ciphertext)) },
  };
}

const corrupt = (file: string, what: string) => new KeystoreError("corrupt", `keystore ${file} is not a usable version 3 keystore: ${what}`);

function field(object: unknown, key: string): unknown {
  return object !== null && typeof object === "object" ? (object as Record<string, unknown>)[key] : undefined;
}

function hexField(object: unknown, key: string, bytes: number | undefined, file: string): string {
  const value = field(object, key);
  const pattern = bytes === undefined ? /^(0x)?([0-9a-fA-F]{2})+$/ : new RegExp(`^(0x)?[0-9a-fA-F]{${2 * bytes}}$`);
  if (typeof value !== "string" || !pattern.test(value)) throw corrupt(file, `${key} is not ${bytes === undefined ? "hex" : `${bytes} bytes of hex`}`);
  return value;
}

function boundedInt(object: unknown, key: string, min: number, max: number, file: string): number {
  const value = field(object, key);
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) throw corrupt(file, `${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return value;
}

function derive(crypto: unknown, password: string, file: string): Uint8Array {
  const kdf = field(crypto, "kdf");
  const params = field(crypto, "kdfparams");
  const salt = hexField(params, "salt", undefined, file);
  boundedInt(params, "dklen", DERIVED_KEY_BYTES, DERIVED_KEY_BYTES, file);
  if (kdf === "scrypt") {
    const n = boundedInt(params, "n", 2, MAX_SCRYPT_N, file);
    if ((n & (n - 1)) !== 0) throw corrupt(file, `n must be a power of two, got ${n}`);
    return scrypt(password, { dklen: DERIVED_KEY_BYTES, n, r: boundedInt(params, "r", 1, MAX_SCRYPT_R, file), p: boundedInt(params, "p", 1, MAX_SCRYPT_P, file), salt });
  }
  if (kdf === "pbkdf2") {
    if (field(params, "prf") !== "hmac-sha256") throw corrupt(file, `prf ${JSON.stringify(field(params, "prf"))} is not supported (hmac-sha256 is)`);
    const rounds = boundedInt(params, "c", 1, MAX_PBKDF2_ROUNDS, file);
    return pbkdf2Sync(password.normalize("NFKC"), unhex(salt), rounds, DERIVED_KEY_BYTES, "sha256");
  }
  throw corrupt(file, `kdf ${JSON.stringify(kdf)} is not supported (scrypt and pbkdf2 are)`);
}

/**
 * The private key inside `text` (a keystore file's content; `file` names it in errors).
 * @throws {KeystoreError} "wrong password" when the MAC does not match, "corrupt" for anything malformed.
 */
export function decryptKeystore(text: string, password: string, file: string): Hex {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch {
    throw corrupt(file, "it is not JSON");
  }
  if (field(json, "version") !== 3) throw corrupt(file, `version is ${JSON.stringify(field(json, "version"))}, not 3`);
  // geth writes `crypto`, some older tools `Crypto`.
  const crypto = field(json, "crypto") ?? field(json, "Crypto");
  if (field(crypto, "cipher") !== CIPHER) throw corrupt(file, `cipher ${JSON.stringify(field(crypto, "cipher"))} is not supported (${CIPHER} is)`);
  const iv = unhex(hexField(field(crypto, "cipherparams"), "iv", 16, file));
  const ciphertext = unhex(hexField(crypto, "ciphertext", 32, file));
  const expectedMac = unhex(hexField(crypto, "mac", 32, file));
  const derivedKey = derive(crypto, password, file);
  if (!timingSafeEqual(mac(derivedKey, ciphertext), expectedMac)) {
    throw new KeystoreError("wrong password", `wrong password for keystore ${file}`);
  }
  const decipher = createDecipheriv(CIPHER, derivedKey.subarray(0, CIPHER_KEY_BYTES), iv);
  const privateKey = bytesToHex(new Uint8Array([...decipher.update(ciphertext), ...decipher.final()]));
  const address = field(json, "address");
  let derived: string;
  try {
    derived = privateKeyToAddress(privateKey).slice(2).toLowerCase();
  } catch {
    throw corrupt(file, "the decrypted key is not a valid secp256k1 private key");
  }
  if (typeof address === "string" && address.replace(/^0x/, "").toLowerCase() !== derived) {
    throw corrupt(file, `its address field (${address}) is not the address of the key it holds (0x${derived})`);
  }
  return privateKey;
}
