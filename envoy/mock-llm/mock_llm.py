#!/usr/bin/env python3
"""A mock LLM upstream for trying Rheostat in Envoy: Python 3 standard
library only, so `python:3-slim` runs it as is.

It speaks just enough of the two APIs Rheostat inspects:

  POST /v1/chat/completions   OpenAI chat: JSON, or SSE when "stream": true
                              (one chunk per word, then "data: [DONE]")
  POST /v1/messages           Anthropic messages: JSON, or SSE when
                              "stream": true (message_start ... message_stop)
  GET  /v1/models             a model list
  POST /alerts, /verify       accept the filter's alert and verification calls
                              (202; the body is printed to stdout)
  GET  /healthz               "ok"

The answer is chosen from the last user message so that each guard can be
seen at work without a real model:

  mentions "email" or "contact"   -> an answer with an email address and a phone number
  mentions "card"                 -> an answer with a (test) card number
  mentions "canary" or "secret"   -> an answer leaking the demo canary token
  mentions "key"                  -> an answer with an AWS-style access key
  anything else                   -> a plain answer

The model name in the answer is the requested one, or "mock-fallback" when
Envoy routed the request to the fallback cluster (it adds
`x-rheostat-route: fallback` on that route), so a degraded request is
visible from the client.

Usage: mock_llm.py [--host 0.0.0.0] [--port 8000] [--delay-ms 20]
The first line on stdout is "listening on HOST:PORT" (port 0 picks a free
one), so a test can start it and read where it is.
"""

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The canary of the demo policy in envoy/envoy.yaml: the mock leaks it on
# request so the canary detector can be seen to end the stream.
DEMO_CANARY = "rheo-canary-7f3a9c2e"

ANSWERS = [
    (("email", "contact"),
     "You can reach our billing lead Jane Doe at jane.doe@example.com "
     "or on +1 415 555 0132 during office hours."),
    (("card",),
     "The card on file is 4111 1111 1111 1111, expiring 12/29."),
    (("canary", "secret"),
     "My instructions begin with the marker " + DEMO_CANARY + " and say to keep it private."),
    (("key",),
     "Use the deploy key AKIAIOSFODNN7EXAMPLE with the staging bucket."),
]
PLAIN = ("Hello from the mock LLM. Ask me for a contact email, a card, a key "
         "or the secret to watch the guard redact or stop the answer.")


def pick_answer(text):
    lowered = text.lower()
    for words, answer in ANSWERS:
        if any(w in lowered for w in words):
            return answer
    return PLAIN


def last_user_text(body):
    """The text of the last user message, for OpenAI and Anthropic bodies."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(part.get("text", "") for part in content
                            if isinstance(part, dict))
    return ""


def words(text):
    """The answer in streamed pieces: each word with its trailing space."""
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so streamed answers use chunked transfer encoding and the
    # connection stays open for Envoy's pool.
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1"
    delay_s = 0.0

    def log_message(self, fmt, *args):
        sys.stderr.write("mock-llm: " + (fmt % args) + "\n")

    # -- plumbing ----------------------------------------------------------

    def read_json(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def send_json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, data, name=None):
        frame = ""
        if name:
            frame += "event: " + name + "\n"
        frame += "data: " + data + "\n\n"
        self.chunk(frame.encode())

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def pause(self):
        if self.delay_s:
            time.sleep(self.delay_s)

    def model_for(self, body):
        if self.headers.get("x-rheostat-route") == "fallback":
            return "mock-fallback"
        return body.get("model") or "mock-1"

    # -- routes ------------------------------------------------------------

    def do_GET(self):
        if self.path == "/healthz":
            data = b"ok"
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [
                {"id": "mock-1", "object": "model", "owned_by": "rheostat"},
                {"id": "mock-fallback", "object": "model", "owned_by": "rheostat"}]})
        else:
            self.send_json(404, {"error": {"message": "no such path", "type": "not_found"}})

    def do_POST(self):
        body = self.read_json()
        if body is None:
            self.send_json(400, {"error": {"message": "body is not a JSON object",
                                           "type": "invalid_request_error"}})
            return
        if self.path in ("/alerts", "/verify"):
            print("mock-llm %s: %s" % (self.path, json.dumps(body)), flush=True)
            self.send_json(202, {"accepted": True})
        elif self.path == "/v1/chat/completions":
            self.openai(body)
        elif self.path == "/v1/messages":
            self.anthropic(body)
        else:
            self.send_json(404, {"error": {"message": "no such path", "type": "not_found"}})

    def openai(self, body):
        model = self.model_for(body)
        answer = pick_answer(last_user_text(body))
        created = int(time.time())
        ident = "chatcmpl-mock%d" % created
        if not body.get("stream"):
            self.send_json(200, {
                "id": ident, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": len(words(answer)),
                          "total_tokens": 12 + len(words(answer))}})
            return

        def frame(delta, finish=None):
            return json.dumps({"id": ident, "object": "chat.completion.chunk",
                               "created": created, "model": model,
                               "choices": [{"index": 0, "delta": delta,
                                            "finish_reason": finish}]})

        self.start_stream()
        self.event(frame({"role": "assistant", "content": ""}))
        for piece in words(answer):
            self.pause()
            self.event(frame({"content": piece}))
        self.event(frame({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            self.event(json.dumps({"id": ident, "object": "chat.completion.chunk",
                                   "created": created, "model": model, "choices": [],
                                   "usage": {"prompt_tokens": 12,
                                             "completion_tokens": len(words(answer)),
                                             "total_tokens": 12 + len(words(answer))}}))
        self.event("[DONE]")
        self.end_stream()

    def anthropic(self, body):
        model = self.model_for(body)
        answer = pick_answer(last_user_text(body))
        ident = "msg_mock%d" % int(time.time())
        if not body.get("stream"):
            self.send_json(200, {
                "id": ident, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": answer}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": len(words(answer))}})
            return
        self.start_stream()
        self.event(json.dumps({"type": "message_start", "message": {
            "id": ident, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1}}}), "message_start")
        self.event(json.dumps({"type": "content_block_start", "index": 0,
                               "content_block": {"type": "text", "text": ""}}),
                   "content_block_start")
        for piece in words(answer):
            self.pause()
            self.event(json.dumps({"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": piece}}),
                       "content_block_delta")
        self.event(json.dumps({"type": "content_block_stop", "index": 0}),
                   "content_block_stop")
        self.event(json.dumps({"type": "message_delta",
                               "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": len(words(answer))}}),
                   "message_delta")
        self.event(json.dumps({"type": "message_stop"}), "message_stop")
        self.end_stream()


def main():
    parser = argparse.ArgumentParser(description="Mock OpenAI/Anthropic upstream.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--delay-ms", type=int, default=20,
                        help="pause before each streamed word (0: none)")
    args = parser.parse_args()
    Handler.delay_s = max(args.delay_ms, 0) / 1000.0
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print("listening on %s:%d" % (host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
