// `make edge-serve UPSTREAM=http://127.0.0.1:PORT [POLICY=file.json]`:
// the guarded worker on http://127.0.0.1:8787 in workerd (Miniflare), for
// trying it with any client. Ctrl-C stops it.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";
import { workerOptions } from "./miniflare.mjs";

const { values } = parseArgs({
  options: {
    upstream: { type: "string" },
    policy: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8787" },
  },
});
if (!values.upstream) {
  console.error("usage: node serve.mjs --upstream http://127.0.0.1:PORT [--policy file.json] [--port 8787]");
  process.exit(2);
}
const policy = values.policy ? readFileSync(values.policy, "utf8") : "{}";
const mf = new Miniflare({
  ...workerOptions({ policy, upstream: values.upstream }),
  host: values.host,
  port: Number(values.port),
});
const url = await mf.ready;
console.log(`rheostat edge worker on ${url} -> ${values.upstream} (policy: ${values.policy || "{}"})`);
const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
