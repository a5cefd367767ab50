// A local stand-in for an LLM API: a Node HTTP server on 127.0.0.1 whose
// answer each test scripts, recording every request it receives.

import { createServer } from "node:http";
import { gzipSync } from "node:zlib";

/** OpenAI chat-completion chunks, one per text, then [DONE]. */
export function openAiSse(texts, model = "gpt-4o") {
  let out = "";
  texts.forEach((content, i) => {
    const chunk = {
      id: "chatcmpl-1",
      object: "chat.completion.chunk",
      created: 1700000000,
      model,
      choices: [{ index: 0, delta: i === 0 ? { role: "assistant", content } : { content }, finish_reason: null }],
    };
    out += `data: ${JSON.stringify(chunk)}\n\n`;
  });
  const last = {
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 1700000000,
    model,
    choices: [{ index: 0, delta: {}, finish_reason: "stop" }],
  };
  return `${out}data: ${JSON.stringify(last)}\n\ndata: [DONE]\n\n`;
}

/** Splits bytes into pieces of `size` (the upstream's chunking). */
export function chunked(text, size) {
  const bytes = Buffer.from(text);
  const out = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 2));

/**
 * Starts the server. `handler(request)` returns `{status, headers, chunks}`
 * (chunks: strings or Buffers written one by one with a short pause between
 * them, so the worker sees them as separate reads, unless `paced` is
 * false); the default answers 404.
 */
export async function startUpstream() {
  const upstream = {
    requests: [],
    handler: () => ({ status: 404, headers: {}, chunks: ["{}"] }),
    url: "",
    close: () => new Promise((resolve) => server.close(resolve)),
  };
  const server = createServer(async (req, res) => {
    const parts = [];
    for await (const part of req) parts.push(part);
    const request = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(parts).toString() };
    upstream.requests.push(request);
    const { status = 200, headers = {}, chunks = [], paced = true } = upstream.handler(request);
    res.writeHead(status, headers);
    for (const chunk of chunks) {
      res.write(chunk);
      if (paced) await pause();
    }
    res.end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  upstream.url = `http://127.0.0.1:${server.address().port}`;
  return upstream;
}

export const sse = (body, size) => ({
  status: 200,
  headers: { "content-type": "text/event-stream" },
  chunks: size ? chunked(body, size) : [body],
});

export const gzipSse = (body) => ({
  status: 200,
  headers: { "content-type": "text/event-stream", "content-encoding": "gzip" },
  chunks: chunked(gzipSync(body), 64),
});
