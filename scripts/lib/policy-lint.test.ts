// The value lint of policy files (audit finding 2, issue 9). Pure: no node, no chain.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { formatAmount, lintPolicy, type ClassJson, type PolicyJson } from "./policy-lint.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => JSON.parse(readFileSync(path.join(ROOT, file), "utf8")) as PolicyJson;
const NCC = 10n ** 18n;

const cls = (name: string, threshold: number, delay: string | number, rules: ClassJson["rules"]): ClassJson => ({
  name, signers: ["alice", "bob", "carol"], threshold, delay, rules,
});
const transfer = (max: bigint) => ({
  target: "CreditToken", function: "transfer(address to,uint256 amount)", conditions: [{ arg: "amount", op: "le", value: max.toString() }],
});
const approve = (conditions: { arg: string | number; op: string; value?: string | number; set?: (string | number)[] }[] = []) => ({
  target: "CreditToken", function: "approve(address spender,uint256 amount)", conditions,
});

describe("policy value lint", () => {
  it("warns about the pre-audit example: one small-vm signer can approve or deposit any amount", () => {
    // test/policy/fixture-policy.json is examples/policy.json as it was before the finding.
    const lint = lintPolicy(read("test/policy/fixture-policy.json"));
    const messages = lint.warnings.map((w) => w.message);
    assert.ok(
      messages.includes(
        "class 'small-vm' (1 of 3, no delay) can move up to unbounded via approve(amount) — more than " +
          "'large-vm-or-terminate' (2 of 3, 1h) allows for transfer (10,000 NCC)",
      ),
      messages.join("\n"),
    );
    assert.ok(messages.includes(
      "class 'small-vm' (1 of 3, no delay) can move up to unbounded via requestVm(deposit) — more than " +
        "'large-vm-or-terminate' (2 of 3, 1h) allows for transfer (10,000 NCC)",
    ));
    // The transfer class's own large requestVm has no deposit bound either: 2 of 3 can still move more than 10,000 NCC.
    assert.ok(lint.warnings.some((w) => w.class === "large-vm-or-terminate" && w.via === "requestVm(deposit)" && w.bound === "unbounded"));
    assert.equal(lint.warnings.length, 3);
    assert.deepEqual(lint.transfers, [{ class: "large-vm-or-terminate", asset: "CreditToken", bound: 10_000n * NCC }]);
  });

  it("finds nothing in examples/policy.json: small-vm moves at most 100 NCC per call, the others at most 10,000", () => {
    const lint = lintPolicy(read("examples/policy.json"));
    assert.deepEqual(lint.warnings, []);
    const max = Object.fromEntries(lint.classes.map((c) => [c.name, c.maxPerCall]));
    assert.deepEqual(max["small-vm"], { CreditToken: 100n * NCC });
    assert.deepEqual(max["large-vm-or-terminate"], { CreditToken: 10_000n * NCC });
    assert.deepEqual(max["policy-change"], {}, "the account's own functions move no tokens");
    const small = lint.classes.find((c) => c.name === "small-vm")!;
    assert.deepEqual(small.moves.map((m) => m.via).sort(), ["approve(amount)", "openOrder(deposit)", "requestVm(deposit)", "topUp(amount)"]);
  });

  it("reads le, lt, eq and in bounds, head word numbers and underscores; ge, gt and ne bound nothing", () => {
    const cases: [object[], bigint | "unbounded"][] = [
      [[{ arg: "amount", op: "le", value: "100_000" }], 100_000n],
      [[{ arg: "amount", op: "lt", value: 100 }], 99n],
      [[{ arg: "amount", op: "eq", value: "0x10" }], 16n],
      [[{ arg: "amount", op: "in", set: [5, "7", 6] }], 7n],
      [[{ arg: 1, op: "le", value: 9 }], 9n],
      [[{ arg: "1", op: "le", value: 9 }, { arg: "amount", op: "le", value: 4 }], 4n],
      [[{ arg: "amount", op: "ge", value: 9 }, { arg: "amount", op: "ne", value: 1 }], "unbounded"],
      [[{ arg: "amount", op: "le", value: "VmRegistry" }], "unbounded"],
      [[{ arg: "spender", op: "le", value: 1 }], "unbounded"],
    ];
    for (const [conditions, bound] of cases) {
      const lint = lintPolicy({ classes: [cls("c", 1, 0, [approve(conditions as never)])] });
      assert.deepEqual(lint.classes[0]!.moves.map((m) => m.bound), [bound], JSON.stringify(conditions));
    }
    // Fields after a static tuple: requestVm's deposit is head word 6.
    const lint = lintPolicy({ classes: [cls("c", 1, 0, [{
      target: "VmRegistry",
      function: "requestVm(address provider,bytes32 manifestDigest,(uint32 vcpu,uint32 memoryMiB,uint32 diskGiB) resources,uint256 maxPricePerSecond,uint256 deposit)",
      conditions: [{ arg: 6, op: "le", value: 3 }, { arg: 5, op: "le", value: 1 }],
    }])] });
    assert.deepEqual(lint.classes[0]!.moves, [{ asset: "CreditToken", rule: 0, function: "requestVm(address,bytes32,(uint32,uint32,uint32),uint256,uint256)", via: "requestVm(deposit)", bound: 3n, heuristic: false }]);
  });

  it("compares a class with every transfer class it is not stronger than, and names the lowest limit", () => {
    const policy: PolicyJson = {
      classes: [
        cls("pay-small", 1, 0, [transfer(1_000n * NCC)]),
        cls("pay-large", 2, "1h", [transfer(10_000n * NCC)]),
        cls("ops", 1, 0, [approve([{ arg: "amount", op: "le", value: (5_000n * NCC).toString() }])]),
        cls("board", 3, "1d", [approve()]),
        cls("quick-board", 3, 0, [approve([{ arg: "amount", op: "le", value: (20_000n * NCC).toString() }])]),
      ],
    };
    const lint = lintPolicy(policy);
    assert.deepEqual(lint.warnings.map((w) => [w.class, w.reference?.class]), [["ops", "pay-small"], ["quick-board", "pay-large"]]);
    assert.equal(
      lint.warnings[0]!.message,
      "class 'ops' (1 of 3, no delay) can move up to 5,000 NCC via approve(amount) — more than 'pay-small' (1 of 3, no delay) allows for transfer (1,000 NCC)",
    );
    // 3 of 3 with no delay needs less delay than 'pay-large': weaker, so held to its 10,000 NCC.
    assert.match(lint.warnings[1]!.message, /'quick-board' \(3 of 3, no delay\) can move up to 20,000 NCC .* 'pay-large' \(2 of 3, 1h\)/);
  });

  it("treats unknown functions with an amount-like argument conservatively, and unbounded ETH to other targets", () => {
    const vault = "0x00000000000000000000000000000000000000aa";
    const policy: PolicyJson = {
      classes: [
        cls("ops", 1, 0, [
          { target: vault, function: "deposit(uint256 assets,address receiver)", conditions: [{ arg: "msg.value", op: "le", value: "0" }] },
          { target: vault, function: "poke(uint256 id)", conditions: [{ arg: "msg.value", op: "le", value: 5 }] },
          { target: vault, function: "sweep(address to)" },
        ]),
        cls("pay", 2, "1h", [transfer(10n * NCC)]),
      ],
    };
    const lint = lintPolicy(policy);
    assert.deepEqual(lint.classes[0]!.moves.map((m) => [m.via, m.bound, m.heuristic]), [
      ["deposit(assets)", "unbounded", true],
      ["poke(msg.value)", 5n, false],
      ["sweep(msg.value)", "unbounded", false],
    ]);
    assert.equal(lint.warnings.length, 2);
    assert.match(lint.warnings[0]!.message, /'ops' .* can move up to unbounded via deposit\(assets\) \(heuristic: unknown function, amount-like argument\) — more than 'pay'/);
    assert.match(lint.warnings[1]!.message, /can send unbounded ETH via sweep\(msg.value\)/);
  });

  it("prints amounts with thousands and decimals", () => {
    assert.equal(formatAmount(10_000n * NCC, "CreditToken"), "10,000 NCC");
    assert.equal(formatAmount(5n * 10n ** 16n, "CreditToken"), "0.05 NCC");
    assert.equal(formatAmount(1234n, "0xabc"), "1,234 (raw units of 0xabc)");
    assert.equal(formatAmount("unbounded", "ETH"), "unbounded");
  });
});
