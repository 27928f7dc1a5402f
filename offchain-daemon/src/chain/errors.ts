/**
 * Cuts every URL in `text` down to its scheme and host. RPC providers put API
 * keys in the path or query (`https://eth.example/v3/<key>`), and viem's errors
 * quote the URL they failed on.
 */
export function redactUrls(text: string): string {
  return text.replace(/\b(?:https?|wss?):\/\/[^\s"'<>]+/g, (found) => {
    try {
      const url = new URL(found);
      const secret = url.username !== "" || url.password !== "" || url.search !== "" || (url.pathname !== "/" && url.pathname !== "");
      return secret ? `${url.protocol}//${url.host}/<redacted>` : found;
    } catch {
      return "<redacted URL>";
    }
  });
}

/** An error's message for logs and the API, with URLs redacted. */
export function errorMessage(error: unknown): string {
  return redactUrls(error instanceof Error ? error.message : String(error));
}
