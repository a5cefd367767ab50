// Rheostat as a Cloudflare-style worker: every request to the LLM upstream
// goes through the guard (wasm, see edge/src), the containment ladder's
// shared state lives in one Durable Object (`RheostatState`).
//
// The guard decides, this file does I/O: each `Exchange` step returns
// `{"next": ...}` and the code below carries it out. See edge/README.md.

import { DurableObject } from "cloudflare:workers";
// A .wasm import is a compiled WebAssembly.Module in workerd (wrangler's
// default rule, Miniflare's "CompiledWasm"): production Workers refuse to
// compile wasm from bytes at run time, and top-level await is not allowed,
// so the glue is initialised synchronously from the module.
import wasmModule from "../pkg/rheostat_edge_bg.wasm";
import { initSync, Guard, Ledger } from "../pkg/rheostat_edge.js";

initSync({ module: wasmModule });

/** How long a policy read from KV is reused before reading it again. */
const KV_POLICY_TTL_MS = 30_000;
const ENDPOINT_PREFIX = "/.rheostat/";
/** Bodies of control and feedback requests are small; read at most this much. */
const MAX_ENDPOINT_BODY = 16 * 1024;
/** The longest a change to the ladder's counters waits to be persisted. */
const PERSIST_EVERY_MS = 1_000;

// ---------------------------------------------------------------- policy

let kvCache = { text: null, at: 0 };

/**
 * The policy text from the environment: the `RHEOSTAT_POLICY` variable (a
 * JSON string, or an object when wrangler.toml gives it as a table), or the
 * `RHEOSTAT_KV` namespace under `RHEOSTAT_POLICY_KEY` (default "policy").
 */
async function policyText(env) {
  const inline = env.RHEOSTAT_POLICY;
  if (typeof inline === "string") return inline;
  if (inline && typeof inline === "object") return JSON.stringify(inline);
  if (env.RHEOSTAT_KV) {
    const now = Date.now();
    if (kvCache.text === null || now - kvCache.at > KV_POLICY_TTL_MS) {
      const text = await env.RHEOSTAT_KV.get(env.RHEOSTAT_POLICY_KEY || "policy");
      if (text === null) {
        throw new Error(`no policy: KV key "${env.RHEOSTAT_POLICY_KEY || "policy"}" is empty`);
      }
      kvCache = { text, at: now };
    }
    return kvCache.text;
  }
  throw new Error("no policy: set the RHEOSTAT_POLICY variable or bind a RHEOSTAT_KV namespace");
}

function randomSeed() {
  return crypto.getRandomValues(new Uint8Array(16));
}

// One compiled guard per isolate, rebuilt when the policy text changes.
let current = { text: null, guard: null, headers: null, error: null };

async function guardFor(env) {
  const text = await policyText(env);
  if (text !== current.text) {
    if (current.guard) current.guard.free();
    try {
      const guard = new Guard(text, randomSeed());
      current = { text, guard, headers: JSON.parse(guard.subjectHeaders()), error: null };
      console.log(JSON.stringify({ event: "configured", summary: guard.summary() }));
    } catch (e) {
      current = { text, guard: null, headers: null, error: String(e.message || e) };
      console.error(`rheostat: ${current.error}`);
    }
  }
  if (current.error) throw new Error(current.error);
  return current;
}

// ---------------------------------------------------------------- helpers

function jsonError(status, message, type = "rheostat_error") {
  return new Response(JSON.stringify({ error: { message, type } }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function stateStub(env) {
  return env.RHEOSTAT_STATE.get(env.RHEOSTAT_STATE.idFromName("rheostat"));
}

function log(lines) {
  for (const line of lines) if (line) console.log(line);
}

/** Logs the Durable Object's events; posts alerts that name a URL. */
function handleEvents(events, ctx) {
  for (const event of events) {
    console.log(JSON.stringify(event));
    if (event.event === "alert" && event.deliver) {
      ctx.waitUntil(
        fetch(event.deliver.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: event.deliver.body,
        }).catch((e) => console.error(`rheostat: alert delivery failed: ${e}`)),
      );
    }
  }
}

function applyHeaders(headers, { set = [], remove = [] }) {
  for (const name of remove) headers.delete(name);
  for (const [name, value] of set) headers.set(name, value);
  return headers;
}

async function readLimited(request, limit) {
  const body = new Uint8Array(await request.arrayBuffer());
  return body.length > limit ? null : body;
}

// ---------------------------------------------------------------- the exchange

/** Tells the Durable Object how the exchange ended, logs it, frees it. */
function finishExchange(ex, stub, ctx) {
  const now = Date.now();
  log(ex.auditLines(now).split("\n"));
  const reportable = ex.reportable;
  const report = reportable ? ex.report(now) : null;
  ex.free();
  if (!reportable) return;
  ctx.waitUntil(
    stub
      .record(report)
      .then((events) => handleEvents(JSON.parse(events), ctx))
      .catch((e) => console.error(`rheostat: could not record the exchange: ${e}`)),
  );
}

function localResponse(ex, step) {
  return new Response(ex.localBody(), { status: step.status, headers: step.headers });
}

async function guarded(request, env, ctx, g) {
  const url = new URL(request.url);
  const header = (name) => (name ? request.headers.get(name) || "" : "");
  const ex = g.guard.exchange(
    request.method,
    url.pathname + url.search,
    header(g.headers.tenant),
    header(g.headers.region),
    header(g.headers.route),
    Date.now(),
  );
  const stub = stateStub(env);

  // Prompts are judged whole, so the body is read before anything goes upstream.
  const declared = Number(request.headers.get("content-length") || 0);
  let step = JSON.parse(
    declared > g.guard.maxRequestBytes ? ex.tooLarge() : ex.request(new Uint8Array(await request.arrayBuffer())),
  );
  if (step.next === "local") {
    const response = localResponse(ex, step);
    finishExchange(ex, stub, ctx);
    return response;
  }

  let ticket;
  try {
    ticket = await stub.decide(JSON.stringify(step.subject));
  } catch (e) {
    console.error(`rheostat: shared state unreachable: ${e}`);
  }
  step = JSON.parse(ex.gate(ticket));
  if (step.next === "local") {
    if (step.mirror) mirror(request, url, env, ctx, ex.upstreamBody());
    const response = localResponse(ex, step);
    finishExchange(ex, stub, ctx);
    return response;
  }

  const target = env.UPSTREAM_URL.replace(/\/+$/, "") + url.pathname + url.search;
  const headers = applyHeaders(new Headers(request.headers), step);
  headers.delete("host");
  let upstream;
  try {
    upstream = await fetch(target, {
      method: request.method,
      headers,
      body: ["GET", "HEAD"].includes(request.method) ? undefined : ex.upstreamBody(),
    });
  } catch (e) {
    step = JSON.parse(ex.upstreamFailed(String(e.message || e)));
    const response = localResponse(ex, step);
    finishExchange(ex, stub, ctx);
    return response;
  }

  // workerd hands fetch() bodies over already decoded (gzip, brotli) while
  // keeping the content-encoding header, so the guard is told the bytes are
  // plain, and the header goes: the client gets what the guard inspected.
  step = JSON.parse(ex.response(upstream.status, upstream.headers.get("content-type"), null));
  const responseHeaders = new Headers(upstream.headers);
  if (step.next !== "pass") responseHeaders.delete("content-encoding");
  if (step.next === "local") {
    ctx.waitUntil(upstream.body?.cancel());
    const response = localResponse(ex, step);
    finishExchange(ex, stub, ctx);
    return response;
  }
  applyHeaders(responseHeaders, step);

  if (step.next === "pass") {
    finishExchange(ex, stub, ctx);
    return new Response(upstream.body, { status: upstream.status, headers: responseHeaders });
  }

  if (step.next === "buffer") {
    const out = ex.buffered(new Uint8Array(await upstream.arrayBuffer()));
    const status = ex.status;
    finishExchange(ex, stub, ctx);
    return new Response(out, { status, headers: responseHeaders });
  }

  // Stream: every upstream chunk goes through the guard as it arrives; the
  // exchange is recorded when the stream ends, however it ends.
  let ended = false;
  const end = (reason) => {
    if (ended) return;
    ended = true;
    if (reason !== undefined) ex.abort(reason);
    finishExchange(ex, stub, ctx);
  };
  const guard = new TransformStream({
    transform(chunk, controller) {
      const out = ex.push(chunk);
      if (out.length) controller.enqueue(out);
    },
    flush(controller) {
      const out = ex.finish();
      if (out.length) controller.enqueue(out);
      end();
    },
  });
  ctx.waitUntil(upstream.body.pipeTo(guard.writable).catch((e) => end(String(e.message || e))));
  return new Response(guard.readable, { status: upstream.status, headers: responseHeaders });
}

/** The `shadow` rung: the client gets the fallback; the request goes to SHADOW_URL for diagnosis. */
function mirror(request, url, env, ctx, body) {
  if (!env.SHADOW_URL) {
    console.log(JSON.stringify({ event: "shadow", note: "no SHADOW_URL: request not mirrored" }));
    return;
  }
  const headers = new Headers(request.headers);
  headers.delete("host");
  headers.delete("content-length");
  headers.set("x-rheostat-shadow", "1");
  const target = env.SHADOW_URL.replace(/\/+$/, "") + url.pathname + url.search;
  ctx.waitUntil(
    fetch(target, { method: request.method, headers, body })
      .then((r) => r.body?.cancel())
      .catch((e) => console.error(`rheostat: shadow mirror failed: ${e}`)),
  );
}

async function endpoint(request, env, ctx, g) {
  const url = new URL(request.url);
  const body = (await readLimited(request, MAX_ENDPOINT_BODY)) || new Uint8Array(MAX_ENDPOINT_BODY + 1);
  // Feedback is limited per client: the policy's client header, else the tenant's.
  const clientHeader = g.headers.feedback_client || g.headers.tenant;
  const client = (clientHeader && request.headers.get(clientHeader)) || "";
  const answer = JSON.parse(
    await stateStub(env).endpoint(
      url.pathname,
      request.method,
      request.headers.get("authorization"),
      client,
      body,
    ),
  );
  handleEvents(answer.events || [], ctx);
  const headers = new Headers(answer.headers || []);
  headers.set("content-type", "application/json");
  headers.set("x-rheostat-outcome", "endpoint");
  return new Response(answer.body, { status: answer.status, headers });
}

export default {
  async fetch(request, env, ctx) {
    let g;
    try {
      if (!env.UPSTREAM_URL) throw new Error("UPSTREAM_URL is not set");
      g = await guardFor(env);
    } catch (e) {
      // Fail closed: without a valid policy nothing is forwarded unguarded.
      return jsonError(500, `rheostat: ${e.message || e}`, "rheostat_config_error");
    }
    try {
      if (new URL(request.url).pathname.startsWith(ENDPOINT_PREFIX)) return await endpoint(request, env, ctx, g);
      return await guarded(request, env, ctx, g);
    } catch (e) {
      console.error(`rheostat: ${e.stack || e}`);
      return jsonError(500, "rheostat: internal error");
    }
  },
};

// ---------------------------------------------------------------- shared state

/**
 * The ladder's shared state: one instance (named "rheostat") for every
 * isolate. Calls run one at a time, so the ledger's compare-and-swap
 * updates never race. Keys written by a call are persisted to the
 * object's storage (unless RHEOSTAT_PERSIST is "false"; see `save`) and
 * restored when the object starts again, so breakers and overrides survive
 * evictions.
 */
export class RheostatState extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.ledger = null;
    this.text = null;
    this.persist = env.RHEOSTAT_PERSIST !== "false";
    this.alarmSet = false;
  }

  async ensure() {
    const text = await policyText(this.env);
    const now = Date.now();
    if (this.ledger === null) {
      this.ledger = new Ledger(text, randomSeed(), now);
      this.text = text;
      if (this.persist) {
        const stored = await this.ctx.storage.list({ prefix: "l:" });
        if (stored.size > 0) {
          const entries = {};
          for (const [key, value] of stored) entries[key.slice(2)] = value;
          this.ledger.restore(JSON.stringify(entries));
        }
      }
    } else if (text !== this.text) {
      this.ledger.configure(text, now);
      this.text = text;
    }
    return this.ledger;
  }

  /**
   * Persists what calls changed. Counters and breakers are written in
   * batches by an alarm at most PERSIST_EVERY_MS after a change: a write
   * per call measured ~10 ms per request in Miniflare, and losing up to a
   * second of counts when the object is evicted is acceptable. An
   * operator's override is written (and confirmed) before the control
   * endpoint answers.
   */
  save(now = false) {
    if (!this.persist) return;
    if (!now) {
      if (!this.alarmSet) {
        this.alarmSet = true;
        this.ctx.storage.setAlarm(Date.now() + PERSIST_EVERY_MS);
      }
      return;
    }
    const dirty = Object.entries(JSON.parse(this.ledger.takeDirty()));
    // storage.put takes at most 128 keys per call; writes are coalesced.
    for (let i = 0; i < dirty.length; i += 128) {
      const batch = {};
      for (const [key, value] of dirty.slice(i, i + 128)) batch[`l:${key}`] = value;
      this.ctx.storage.put(batch);
    }
  }

  async alarm() {
    this.alarmSet = false;
    if (this.ledger) this.save(true);
  }

  async decide(subject) {
    const ledger = await this.ensure();
    const ticket = ledger.decide(subject, Date.now());
    this.save();
    return ticket;
  }

  async record(report) {
    const ledger = await this.ensure();
    const events = ledger.record(report, Date.now());
    this.save();
    return events;
  }

  async endpoint(path, method, authorization, client, body) {
    const ledger = await this.ensure();
    const answer = ledger.endpoint(path, method, authorization ?? undefined, client, body, Date.now());
    this.save(true);
    return answer;
  }
}
