#!/usr/bin/env node
// The daemon is TypeScript run by Node's own type stripping, so there is no build step.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  console.error(`novacron-daemon needs Node.js >= 22.13 (this is ${process.version}).`);
  process.exit(2);
}
if (!process.features.typescript) {
  // Node 22.13-22.17 strip types only behind a flag.
  console.error("novacron-daemon: run it with NODE_OPTIONS=--experimental-strip-types, or use Node.js >= 22.18.");
  process.exit(2);
}
// node:sqlite still prints an ExperimentalWarning on Node 22; the daemon's stderr is for its own messages.
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.name !== "ExperimentalWarning") console.error(`${warning.name}: ${warning.message}`);
});
await import("../src/cli.ts");
