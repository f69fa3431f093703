// verify.mjs checks webhooks with the standardwebhooks npm package, an
// implementation of the Standard Webhooks specification independent of the
// broker's. It reads one JSON object a line from stdin,
// {"secret","id","timestamp","signature","body"}, and writes one a line to
// stdout: {"ok":bool,"error":"…","signature":"…"}, where ok is the library's
// verify (which also refuses a timestamp more than 5 minutes from now) and
// signature is what the library's sign makes of the same id, timestamp and
// body.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(import.meta.url);
const { Webhook } = require("standardwebhooks");

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  const req = JSON.parse(line);
  const out = { ok: false, error: "", signature: "" };
  try {
    const wh = new Webhook(req.secret);
    out.signature = wh.sign(req.id, new Date(Number(req.timestamp) * 1000), req.body);
    wh.verify(req.body, {
      "webhook-id": req.id,
      "webhook-timestamp": req.timestamp,
      "webhook-signature": req.signature,
    });
    out.ok = true;
  } catch (e) {
    out.error = String(e && e.message ? e.message : e);
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
