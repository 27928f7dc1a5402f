// The keystore format against another implementation (ethers), and hostile or damaged files.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decryptKeystoreJsonSync, encryptKeystoreJsonSync } from "ethers";
import { privateKeyToAddress } from "viem/accounts";
import { decryptKeystore, encryptKeystore, KeystoreError, STANDARD_SCRYPT_N } from "./keystore.ts";

const key = `0x${"4c".repeat(32)}` as const;
const password = "correct horse battery";
/** Cheap scrypt for tests; the daemon writes STANDARD_SCRYPT_N. */
const TEST_N = 2 ** 10;

function failure(run: () => unknown): KeystoreError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof KeystoreError, `expected a KeystoreError, got ${String(error)}`);
    assert.ok(!error.message.includes("\n"), error.message);
    assert.ok(!error.message.includes(key.slice(2, 18)), "the key never appears in an error");
    return error;
  }
  assert.fail("expected decryptKeystore to throw");
}

describe("keystore (Web3 Secret Storage v3)", () => {
  it("writes the standard work factor by default", () => {
    assert.equal(STANDARD_SCRYPT_N, 2 ** 18);
  });

  it("round-trips a key, and ethers reads what it writes", () => {
    const json = encryptKeystore(key, password, { scryptN: TEST_N });
    assert.equal(json.address, privateKeyToAddress(key).slice(2).toLowerCase());
    assert.equal(decryptKeystore(JSON.stringify(json), password, "k.json"), key);
    assert.equal(decryptKeystoreJsonSync(JSON.stringify(json), password).privateKey, key);
  });

  it("reads what ethers writes (scrypt)", () => {
    const json = encryptKeystoreJsonSync({ address: privateKeyToAddress(key), privateKey: key }, password, { scrypt: { N: TEST_N } });
    assert.equal(decryptKeystore(json, password, "ethers.json"), key);
  });

  it("says 'wrong password' for a wrong password and 'corrupt' for a damaged file", () => {
    const text = JSON.stringify(encryptKeystore(key, password, { scryptN: TEST_N }));
    const wrong = failure(() => decryptKeystore(text, "wrong horse battery", "k.json"));
    assert.equal(wrong.reason, "wrong password");
    assert.equal(wrong.message, "wrong password for keystore k.json");
    const flipped = JSON.parse(text);
    flipped.crypto.ciphertext = flipped.crypto.ciphertext.replace(/^./, (c: string) => (c === "0" ? "1" : "0"));
    // A changed ciphertext fails the MAC like a wrong password does: the format cannot tell the two apart.
    assert.equal(failure(() => decryptKeystore(JSON.stringify(flipped), password, "k.json")).reason, "wrong password");
    assert.match(failure(() => decryptKeystore("{not json", password, "k.json")).message, /^keystore k\.json is not a usable version 3 keystore: it is not JSON$/);
    assert.match(failure(() => decryptKeystore(JSON.stringify({ ...flipped, version: 1 }), password, "k.json")).message, /version is 1, not 3/);
    const shortMac = JSON.parse(text);
    shortMac.crypto.mac = "abcd";
    assert.match(failure(() => decryptKeystore(JSON.stringify(shortMac), password, "k.json")).message, /mac is not 32 bytes of hex/);
    const otherAddress = JSON.parse(text);
    otherAddress.address = "00".repeat(20);
    assert.match(failure(() => decryptKeystore(JSON.stringify(otherAddress), password, "k.json")).message, /its address field .* is not the address of the key it holds/);
  });

  it("refuses work factors that would exhaust memory or time before doing any work", () => {
    const text = JSON.stringify(encryptKeystore(key, password, { scryptN: TEST_N }));
    for (const [param, value, expected] of [
      ["n", 2 ** 30, /n must be an integer from 2 to 1048576, got 1073741824/],
      ["n", 1000, /n must be a power of two, got 1000/],
      ["r", 1_000_000, /r must be an integer from 1 to 16/],
      ["p", 64, /p must be an integer from 1 to 4/],
      ["dklen", 64, /dklen must be an integer from 32 to 32/],
    ] as const) {
      const hostile = JSON.parse(text);
      hostile.crypto.kdfparams[param] = value;
      const started = Date.now();
      const error = failure(() => decryptKeystore(JSON.stringify(hostile), password, "k.json"));
      assert.equal(error.reason, "corrupt");
      assert.match(error.message, expected);
      assert.ok(Date.now() - started < 1_000, `refused ${param} = ${value} without running the KDF`);
    }
    const unknownKdf = JSON.parse(text);
    unknownKdf.crypto.kdf = "argon2";
    assert.match(failure(() => decryptKeystore(JSON.stringify(unknownKdf), password, "k.json")).message, /kdf "argon2" is not supported/);
  });
});
