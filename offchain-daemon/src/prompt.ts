// Reading secrets from the person at the terminal (never from the command line, where `ps` shows them).
import { createInterface } from "node:readline";

/** Asks `question` on stderr and reads one line without echoing it. Needs a terminal on stdin. */
export function readHidden(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) return Promise.reject(new Error("no terminal to ask on"));
  return new Promise((resolve, reject) => {
    process.stderr.write(question);
    let answer = "";
    const finish = (error?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off("data", onData);
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(answer);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString("utf8")) {
        if (char === "\r" || char === "\n") return finish();
        if (char === "\u0003") return finish(new Error("interrupted"));
        if (char === "\u007f" || char === "\b") answer = answer.slice(0, -1);
        else answer += char;
      }
    };
    input.setRawMode(true);
    input.resume();
    input.on("data", onData);
  });
}

/** Everything a pipe sends on stdin, without its trailing newline (for `keystore import` in scripts). */
export async function readStdin(): Promise<string> {
  const lines: string[] = [];
  for await (const line of createInterface({ input: process.stdin })) lines.push(line);
  return lines.join("\n").trim();
}
