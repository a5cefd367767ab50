// `make edge-bench`: the edge figures, measured in one run on this machine.
// - sizes of the module and its glue (raw and gzipped);
// - cold start: a new workerd (Miniflare) until ready, then the first
//   request (which compiles the policy and starts the Durable Object),
//   for the guarded worker and for a pass-through worker;
// - per-request overhead: the same streamed exchange (a ~2 KiB chat
//   request with one email, ~100 SSE frames back) through both workers,
//   alternately, against a local mock upstream; p50 and p99 of each and the
//   difference.
// Traffic goes only to 127.0.0.1 and every loop is bounded.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import { WORKER_DIR, passthroughOptions, workerOptions } from "./miniflare.mjs";
import { chunked, openAiSse, startUpstream } from "./test/upstream.mjs";

const args = new Set(process.argv.slice(2));
const QUICK = args.has("--quick");
const COLD_RUNS = QUICK ? 1 : 3;
const SAMPLES = QUICK ? 20 : 300;
const WARMUP = QUICK ? 5 : 30;
const POLICY = readFileSync(join(WORKER_DIR, "..", "..", "examples", "policies", "default.json"), "utf8");

const median = (xs) => percentile(xs, 0.5);
function percentile(xs, p) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}
const ms = (ns) => Number(ns) / 1e6;

const words = "the quick brown fox jumps over the lazy dog and keeps running through the field ".split(" ");
const answer = Array.from({ length: 100 }, (_, i) => `${words[i % words.length]} `);
const prompt = `${"Please summarise the following notes for the team. ".repeat(36)} Contact: jane.doe@example.com`;
const request = () => ({
  method: "POST",
  headers: { "content-type": "application/json", "x-tenant-id": "bench" },
  body: JSON.stringify({ model: "gpt-4o", stream: true, messages: [{ role: "user", content: prompt }] }),
});
const URL_ = "http://localhost/v1/chat/completions";

async function exchange(mf) {
  const start = process.hrtime.bigint();
  const response = await mf.dispatchFetch(URL_, request());
  await response.arrayBuffer();
  return ms(process.hrtime.bigint() - start);
}

async function coldStart(options) {
  const start = process.hrtime.bigint();
  const mf = new Miniflare(options);
  await mf.ready;
  const ready = ms(process.hrtime.bigint() - start);
  const first = await exchange(mf);
  await mf.dispose();
  return { ready, first };
}

const upstream = await startUpstream();
upstream.handler = () => ({
  status: 200,
  headers: { "content-type": "text/event-stream" },
  chunks: chunked(openAiSse(answer), 1024),
  paced: false,
});

const wasm = readFileSync(join(WORKER_DIR, "pkg", "rheostat_edge_bg.wasm"));
const glue = readFileSync(join(WORKER_DIR, "pkg", "rheostat_edge.js"));
const report = {
  wasm_bytes: wasm.length,
  wasm_gzip_bytes: gzipSync(wasm, { level: 9 }).length,
  glue_bytes: glue.length,
  glue_gzip_bytes: gzipSync(glue, { level: 9 }).length,
};

const guardedOptions = workerOptions({
  policy: POLICY,
  upstream: upstream.url,
  bindings: args.has("--no-persist") ? { RHEOSTAT_PERSIST: "false" } : {},
});
const passOptions = passthroughOptions({ upstream: upstream.url });
const cold = { guarded: [], passthrough: [] };
for (let i = 0; i < COLD_RUNS; i++) {
  cold.guarded.push(await coldStart(guardedOptions));
  cold.passthrough.push(await coldStart(passOptions));
}
for (const [name, runs] of Object.entries(cold)) {
  report[`cold_ready_ms_${name}`] = median(runs.map((r) => r.ready));
  report[`cold_first_request_ms_${name}`] = median(runs.map((r) => r.first));
}

const guarded = new Miniflare(guardedOptions);
const passthrough = new Miniflare(passOptions);
await Promise.all([guarded.ready, passthrough.ready]);
for (let i = 0; i < WARMUP; i++) {
  await exchange(guarded);
  await exchange(passthrough);
}
const lat = { guarded: [], passthrough: [] };
for (let i = 0; i < SAMPLES; i++) {
  // Alternate, so a burst of load from neighbours falls on both.
  lat.guarded.push(await exchange(guarded));
  lat.passthrough.push(await exchange(passthrough));
}
await guarded.dispose();
await passthrough.dispose();
await upstream.close();

for (const name of ["guarded", "passthrough"]) {
  report[`${name}_ms_p50`] = median(lat[name]);
  report[`${name}_ms_p99`] = percentile(lat[name], 0.99);
}
report.overhead_ms_p50 = report.guarded_ms_p50 - report.passthrough_ms_p50;
report.overhead_ms_p99 = report.guarded_ms_p99 - report.passthrough_ms_p99;
report.samples = SAMPLES;
report.response_frames = answer.length + 2;
report.request_bytes = request().body.length;

if (args.has("--json")) {
  console.log(JSON.stringify(report));
} else {
  for (const [key, value] of Object.entries(report)) {
    console.log(`${key.padEnd(34)} ${typeof value === "number" && !Number.isInteger(value) ? value.toFixed(2) : value}`);
  }
}
