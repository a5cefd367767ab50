// The real worker (src/worker.js + the wasm guard) in workerd through
// Miniflare, offline, in front of a local mock upstream that streams
// OpenAI SSE in chosen chunkings.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Miniflare } from "miniflare";
import { workerOptions } from "../miniflare.mjs";
import { gzipSse, openAiSse, sse, startUpstream } from "./upstream.mjs";

const CHAT = "http://localhost/v1/chat/completions";
const TOKEN = "edge-test-token-0123456789";

function chat(content, { stream = true, tenant = "acme", headers = {} } = {}) {
  return {
    method: "POST",
    headers: { "content-type": "application/json", "x-tenant-id": tenant, ...headers },
    body: JSON.stringify({ model: "gpt-4o", stream, messages: [{ role: "user", content }] }),
  };
}

/** A Miniflare running the worker with `policy` in front of a fresh mock upstream. */
function harness(policy, extra = {}) {
  const h = { upstream: null, mf: null };
  before(async () => {
    h.upstream = await startUpstream();
    h.mf = new Miniflare(workerOptions({ policy, upstream: h.upstream.url, ...extra }));
    await h.mf.ready;
  });
  after(async () => {
    await h.mf?.dispose();
    await h.upstream?.close();
  });
  return h;
}

describe("streamed redaction", () => {
  const h = harness({ name: "edge-test" });
  const body = openAiSse(["Sure, write to jane.do", "e@example.com or call", " me. Bye!"]);

  test("an email split across frames and chunks is redacted, and the output does not depend on the chunking", async () => {
    const outputs = [];
    for (const size of [body.length, 64, 7, 1]) {
      h.upstream.handler = () => sse(body, size);
      const response = await h.mf.dispatchFetch(CHAT, chat("hello"));
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/event-stream");
      assert.match(response.headers.get("x-rheostat-response-id"), /^r1\./);
      outputs.push(await response.text());
    }
    assert.ok(!outputs[0].includes("jane.doe@example.com"), outputs[0]);
    assert.ok(outputs[0].includes("[EMAIL]"), outputs[0]);
    assert.ok(outputs[0].endsWith("data: [DONE]\n\n"));
    for (const output of outputs.slice(1)) assert.equal(output, outputs[0]);
  });

  test("an email in the prompt reaches the upstream redacted", async () => {
    h.upstream.handler = () => sse(openAiSse(["ok"]));
    const response = await h.mf.dispatchFetch(CHAT, chat("my address is bob@example.org"));
    await response.text();
    const sent = JSON.parse(h.upstream.requests.at(-1).body);
    assert.equal(sent.messages[0].content, "my address is [EMAIL]");
    assert.equal(h.upstream.requests.at(-1).headers["accept-encoding"], undefined);
  });

  test("a gzip-encoded stream reaches the client decoded and redacted", async () => {
    h.upstream.handler = () => gzipSse(body);
    const response = await h.mf.dispatchFetch(CHAT, chat("hello"));
    assert.equal(response.headers.get("content-encoding"), null);
    const text = await response.text();
    assert.ok(text.includes("[EMAIL]") && !text.includes("jane.doe@example.com"), text);
  });
});

describe("in-band block", () => {
  const h = harness({ canaries: ["rheo-canary-7f3a9c2e"] });

  test("a canary in the answer ends the stream with content_filter and [DONE]", async () => {
    h.upstream.handler = () => sse(openAiSse(["The secret is rheo-can", "ary-7f3a9c2e, enjoy", " the rest"]), 5);
    const response = await h.mf.dispatchFetch(CHAT, chat("what is the secret?"));
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.ok(!text.includes("7f3a9c2e"), text);
    assert.ok(!text.includes("enjoy"), text);
    const frames = text.trim().split("\n\n");
    assert.equal(frames.at(-1), "data: [DONE]");
    assert.match(frames.at(-2), /"finish_reason":"content_filter"/);
  });
});

describe("breaker across requests through the Durable Object", () => {
  const h = harness({
    controls: { breaker: { min_requests: 3, error_rate: 0.5, cooldown_secs: 3600, scopes: ["global"] } },
  });

  test("after min_requests upstream 5xx answers the worker serves the fallback without calling the upstream", async () => {
    h.upstream.handler = () => ({
      status: 500,
      headers: { "content-type": "application/json" },
      chunks: [JSON.stringify({ error: { message: "overloaded", type: "server_error" } })],
    });
    for (let i = 0; i < 3; i++) {
      const response = await h.mf.dispatchFetch(CHAT, chat("hi", { stream: false }));
      assert.equal(response.status, 500);
      await response.text();
    }
    assert.equal(h.upstream.requests.length, 3);
    // The outcome is recorded in the object after the answer (waitUntil);
    // poll until the breaker shows open rather than assuming a delay.
    let response;
    for (let attempt = 0; attempt < 50; attempt++) {
      response = await h.mf.dispatchFetch(CHAT, chat("hi", { stream: false }));
      if (response.headers.get("x-rheostat-outcome") === "fallback") break;
      await response.text();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-rheostat-outcome"), "fallback");
    assert.equal(response.headers.get("x-rheostat-level"), "breaker");
    const answer = await response.json();
    assert.match(answer.choices[0].message.content, /temporarily unavailable/);
    const reached = h.upstream.requests.length;
    const again = await h.mf.dispatchFetch(CHAT, chat("hi"));
    assert.equal(again.headers.get("content-type"), "text/event-stream");
    assert.match(await again.text(), /temporarily unavailable[\s\S]*data: \[DONE\]/);
    assert.equal(h.upstream.requests.length, reached, "an open breaker keeps requests from the upstream");
  });
});

describe("scoped stop", () => {
  const h = harness({ controls: { token: TOKEN } });
  const control = (body, token = TOKEN) => ({
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

  test("a stop set for one tenant through the control endpoint answers 503 to that tenant only", async () => {
    h.upstream.handler = () => sse(openAiSse(["fine"]));
    const denied = await h.mf.dispatchFetch("http://localhost/.rheostat/control", control({ level: "scoped_stop" }, "wrong"));
    assert.equal(denied.status, 401);
    const set = await h.mf.dispatchFetch(
      "http://localhost/.rheostat/control",
      control({ level: "scoped_stop", scope: { tenant: "acme" }, reason: "drill" }),
    );
    assert.equal(set.status, 200, await set.clone().text());
    assert.deepEqual(await set.json(), { scope: "tenant=acme", level: "scoped_stop", previous: "normal" });

    const before = h.upstream.requests.length;
    const stopped = await h.mf.dispatchFetch(CHAT, chat("hi", { tenant: "acme" }));
    assert.equal(stopped.status, 503);
    assert.equal(stopped.headers.get("x-rheostat-outcome"), "maintenance");
    assert.match((await stopped.json()).error.message, /paused for maintenance/);
    assert.equal(h.upstream.requests.length, before);

    const other = await h.mf.dispatchFetch(CHAT, chat("hi", { tenant: "globex" }));
    assert.equal(other.status, 200);
    assert.match(await other.text(), /fine/);

    const status = await h.mf.dispatchFetch("http://localhost/.rheostat/status", {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const levels = (await status.json()).levels;
    assert.equal(levels.tenant, "scoped_stop");
    assert.equal(levels.global, "normal");
  });
});

describe("invalid policy", () => {
  const h = harness({ controls: { level: "loud" } });

  test("every request gets a 500 naming the policy error, and nothing goes upstream", async () => {
    for (let i = 0; i < 2; i++) {
      const response = await h.mf.dispatchFetch(CHAT, chat("hi"));
      assert.equal(response.status, 500);
      const { error } = await response.json();
      assert.equal(error.type, "rheostat_config_error");
      assert.match(error.message, /^rheostat: invalid policy: controls\.level: unknown variant `loud`/);
    }
    assert.equal(h.upstream.requests.length, 0);
  });
});

describe("persistence", () => {
  test("an override survives a restart of the Durable Object", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rheostat-do-"));
    const upstream = await startUpstream();
    upstream.handler = () => sse(openAiSse(["fine"]));
    const policy = { controls: { token: TOKEN } };
    try {
      let mf = new Miniflare(workerOptions({ policy, upstream: upstream.url, persist: dir }));
      const set = await mf.dispatchFetch("http://localhost/.rheostat/control", {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ level: "global_stop" }),
      });
      assert.equal(set.status, 200);
      await mf.dispose();

      mf = new Miniflare(workerOptions({ policy, upstream: upstream.url, persist: dir }));
      const response = await mf.dispatchFetch(CHAT, chat("hi"));
      assert.equal(response.status, 503);
      await response.text();
      await mf.dispose();
    } finally {
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
