// Miniflare options for the worker, shared by the tests, `make edge-serve`
// and the benchmark, so all three run exactly what wrangler.toml deploys.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const WORKER_DIR = dirname(fileURLToPath(import.meta.url));

/** compatibility_date from wrangler.toml: one source for tests and deploys. */
export const COMPATIBILITY_DATE = readFileSync(join(WORKER_DIR, "wrangler.toml"), "utf8").match(
  /^compatibility_date\s*=\s*"([0-9-]+)"/m,
)[1];

const WASM = join(WORKER_DIR, "pkg", "rheostat_edge_bg.wasm");

/** Fails with a hint when `make edge` has not run. */
export function assertBuilt() {
  try {
    readFileSync(WASM);
  } catch {
    throw new Error(`${WASM} is missing: run \`make edge\` at the repository root first`);
  }
}

/**
 * The guarded worker. `policy`: an object or a JSON string; `upstream`: the
 * LLM API base URL; `bindings`: extra variables; `persist`: a directory for
 * Durable Object storage (in memory when omitted).
 */
export function workerOptions({ policy, upstream, bindings = {}, persist } = {}) {
  assertBuilt();
  return {
    modulesRoot: WORKER_DIR,
    modules: [
      { type: "ESModule", path: join(WORKER_DIR, "src", "worker.js") },
      { type: "ESModule", path: join(WORKER_DIR, "pkg", "rheostat_edge.js") },
      { type: "CompiledWasm", path: WASM },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: { RHEOSTAT_STATE: "RheostatState" },
    ...(persist ? { durableObjectsPersist: persist } : {}),
    bindings: {
      ...(policy === undefined ? {} : { RHEOSTAT_POLICY: typeof policy === "string" ? policy : JSON.stringify(policy) }),
      ...(upstream ? { UPSTREAM_URL: upstream } : {}),
      ...bindings,
    },
  };
}

/** A worker that only forwards to the upstream: the baseline for overhead figures. */
export function passthroughOptions({ upstream }) {
  return {
    modules: true,
    script: `export default {
      async fetch(request, env) {
        const url = new URL(request.url);
        const headers = new Headers(request.headers);
        headers.delete("host");
        const body = ["GET", "HEAD"].includes(request.method) ? undefined : await request.arrayBuffer();
        const r = await fetch(env.UPSTREAM_URL + url.pathname + url.search, { method: request.method, headers, body });
        return new Response(r.body, r);
      },
    };`,
    compatibilityDate: COMPATIBILITY_DATE,
    bindings: { UPSTREAM_URL: upstream },
  };
}
