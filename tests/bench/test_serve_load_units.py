#!/usr/bin/env python3
"""Unit tests of bench/serve_load.py: percentiles, SSE token counting, prompt fitting, and whole runs against a small
in-process OpenAI-style server whose behaviour (tokenizer, EOS, failures, usage) the test controls."""

import http.server
import io
import json
import os
import sys
import tempfile
import threading
import unittest
from contextlib import redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import serve_load as sl  # noqa: E402


class Percentiles(unittest.TestCase):
    def test_hand_computed_values(self):
        xs = [15, 20, 35, 40, 50]
        # rank = (n - 1) * p / 100: p50 -> rank 2 -> 35; p90 -> rank 3.6 -> 40 + 0.6 * 10; p99 -> 3.96.
        self.assertEqual(sl.percentile(xs, 50), 35)
        self.assertAlmostEqual(sl.percentile(xs, 90), 46.0)
        self.assertAlmostEqual(sl.percentile(xs, 99), 49.6)
        self.assertEqual(sl.percentile(xs, 0), 15)
        self.assertEqual(sl.percentile(xs, 100), 50)
        self.assertEqual(sl.percentile(list(reversed(xs)), 50), 35)  # order of input does not matter
        self.assertAlmostEqual(sl.percentile([1, 2], 25), 1.25)

    def test_edges(self):
        self.assertIsNone(sl.percentile([], 50))
        self.assertEqual(sl.percentile([7], 99), 7)
        with self.assertRaises(ValueError):
            sl.percentile([1], 101)

    def test_summarize_scales(self):
        s = sl.summarize([0.010, 0.020, 0.030], 1000.0)
        self.assertAlmostEqual(s["p50"], 20.0)
        self.assertAlmostEqual(s["mean"], 20.0)
        self.assertAlmostEqual(s["min"], 10.0)
        self.assertAlmostEqual(s["max"], 30.0)
        self.assertIsNone(sl.summarize([])["p90"])


def feed(lines, chat=False):
    r = sl.StreamResult()
    for t, line in enumerate(lines):
        sl.consume_sse_line(r, line, chat, float(t))
    return r


class TokenCounting(unittest.TestCase):
    def test_completion_chunks_and_usage(self):
        r = feed([
            ": keep-alive\n",
            "data: " + json.dumps({"choices": [{"text": "Hello"}]}) + "\n",
            "\n",
            "data: " + json.dumps({"choices": [{"text": ""}]}) + "\n",  # empty text is no token
            "data: " + json.dumps({"choices": [{"text": " world"}]}) + "\n",
            "data: " + json.dumps({"choices": [{"text": "!", "finish_reason": None}]}) + "\n",
            "data: " + json.dumps({"choices": [{"text": "", "finish_reason": "length"}]}) + "\n",
            "data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}) + "\n",
            "data: [DONE]\n",
        ])
        self.assertEqual(r.text_chunks, 3)
        self.assertEqual(r.usage_completion_tokens, 4)
        self.assertEqual(r.output_tokens, 4)  # the server's count wins over the chunks
        self.assertEqual(r.usage_prompt_tokens, 9)
        self.assertEqual(r.finish_reason, "length")
        self.assertTrue(r.done)
        self.assertEqual(r.ttft, 1.0)
        self.assertEqual(r.last_token_at, 5.0)
        self.assertAlmostEqual(r.tpot, (5.0 - 1.0) / 3)

    def test_chat_deltas_without_usage(self):
        r = feed([
            "data: " + json.dumps({"choices": [{"delta": {"role": "assistant"}}]}),
            "data: " + json.dumps({"choices": [{"delta": {"content": "a"}}]}),
            "data: " + json.dumps({"choices": [{"delta": {"content": "b"}}]}),
            "data: " + json.dumps({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
            "data: [DONE]",
        ], chat=True)
        self.assertEqual(r.output_tokens, 2)
        self.assertEqual(r.ttft, 1.0)
        self.assertEqual(r.tpot, 1.0)
        self.assertEqual(r.finish_reason, "stop")

    def test_one_token_has_no_tpot_and_error_events_raise(self):
        self.assertIsNone(feed(["data: " + json.dumps({"choices": [{"text": "x"}]})]).tpot)
        with self.assertRaises(RuntimeError):
            feed(['data: {"error": {"message": "boom"}}'])


class PromptFitting(unittest.TestCase):
    def test_fit_words_hits_the_target_or_stays_below(self):
        count = lambda text: len(text.split()) + 1  # one token per word plus BOS
        make = lambda n: "head " + " ".join(["w"] * n)
        self.assertEqual(fit_exact(count, make, 50, 10), 48)
        self.assertEqual(fit_exact(count, make, 50, 200), 48)
        # Words of two tokens each: an odd target is unreachable, the fit stays one below.
        count2 = lambda text: 2 * len(text.split())
        n, tokens = sl.fit_words(count2, make, 51, 0)
        self.assertEqual(tokens, 50)
        self.assertEqual(n, 24)


def fit_exact(count, make, target, guess):
    n, tokens = sl.fit_words(count, make, target, guess)
    assert tokens == target, (n, tokens)
    return n


class MockOpenAI(http.server.ThreadingHTTPServer):
    """Tokens are whitespace-separated words plus a BOS; generation stops at `eos_after` tokens unless ignore_eos."""

    daemon_threads = True

    def __init__(self, owned_by="llamacpp", tokenize=True, usage=True, eos_after=None, fail_every=0,
                 keep_alive=False, drop_every=0):
        # keep_alive: HTTP/1.1 with chunked streams, so a client may send its next request on the same connection;
        # drop_every: every n-th stream's connection is then closed without a word (an idle limit reached).
        super().__init__(("127.0.0.1", 0), KeepAliveHandler if keep_alive else MockHandler)
        self.owned_by, self.tokenize, self.usage, self.eos_after, self.fail_every = \
            owned_by, tokenize, usage, eos_after, fail_every
        self.drop_every = drop_every
        self.stream_ports = []  # the client port each stream request came from
        self.lock = threading.Lock()
        self.stream_bodies = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self):
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class MockHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": "mock", "owned_by": self.server.owned_by}]})
        else:
            self.reply(404, {"error": "no"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        if self.path == "/tokenize":
            if not srv.tokenize:
                return self.reply(404, {"error": "no"})
            n = len(body["content"].split()) + (1 if body.get("add_special") else 0)
            return self.reply(200, {"tokens": list(range(n))})
        text = body["messages"][0]["content"] if "messages" in body else body["prompt"]
        prompt_tokens = len(text.split()) + 1
        if not body.get("stream"):
            return self.reply(200, {"choices": [{"text": "x"}],
                                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1}})
        with srv.lock:
            srv.stream_bodies.append(body)
            srv.stream_ports.append(self.client_address[1])
            index = len(srv.stream_bodies)
        if srv.fail_every and index % srv.fail_every == 0:
            return self.reply(500, {"error": {"message": "injected failure"}})
        n = body["max_tokens"]
        if srv.eos_after is not None and not body.get("ignore_eos"):
            n = min(n, srv.eos_after)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.begin_stream()
        chat = "messages" in body
        for i in range(n):
            choice = {"delta": {"content": f" t{i}"}} if chat else {"text": f" t{i}"}
            self.event(b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n")
        final = {"delta": {}} if chat else {"text": ""}
        final["finish_reason"] = "length"
        self.event(b"data: " + json.dumps({"choices": [final]}).encode() + b"\n\n")
        if srv.usage and body.get("stream_options", {}).get("include_usage"):
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n}
            self.event(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
        self.event(b"data: [DONE]\n\n")
        self.end_stream()
        if srv.drop_every and index % srv.drop_every == 0:
            self.close_connection = True  # the client was not told: its next request on it finds it closed

    # HTTP/1.0: the stream's end is the connection's.
    def begin_stream(self):
        self.end_headers()

    def event(self, data):
        self.wfile.write(data)

    def end_stream(self):
        pass


class KeepAliveHandler(MockHandler):
    protocol_version = "HTTP/1.1"

    def begin_stream(self):
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def event(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def run_json(argv):
    out = io.StringIO()
    with redirect_stdout(out):
        rc = sl.main(argv + ["--json", "--request-timeout", "20"])
    return rc, json.loads(out.getvalue())


class WholeRuns(unittest.TestCase):
    def test_tokenize_server_gets_exact_prompts_and_ignore_eos(self):
        srv = MockOpenAI(owned_by="llamacpp", eos_after=3)
        try:
            rc, rep = run_json(["--url", srv.url, "--clients", "1,3", "--requests-per-client", "4",
                                "--prompt-tokens", "40", "--max-tokens", "6"])
        finally:
            srv.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(rep["setup"]["prompt_method"], "tokenize")
        self.assertEqual(rep["setup"]["server_kind"], "llama.cpp")
        self.assertTrue(rep["setup"]["ignore_eos"])
        self.assertEqual([ph["clients"] for ph in rep["phases"]], [1, 3])
        for ph in rep["phases"]:
            self.assertEqual(ph["requests"], ph["clients"] * 4)
            self.assertEqual(ph["requests_ok"], ph["requests"])
            self.assertEqual(ph["errors"], 0)
            self.assertEqual(ph["output_tokens"], ph["requests"] * 6)  # ignore_eos honoured: no early stop
            self.assertEqual(ph["stopped_early"], 0)
            self.assertEqual(ph["prompt_tokens_reported"]["min"], 40)
            self.assertEqual(ph["prompt_tokens_reported"]["max"], 40)
            self.assertEqual(ph["token_count_source"], "usage")
            self.assertAlmostEqual(ph["output_tok_per_s"], ph["output_tokens"] / ph["duration_s"])
            for k in ("p50", "p90", "p99"):
                self.assertIsNotNone(ph["ttft_ms"][k])
                self.assertIsNotNone(ph["tpot_ms"][k])
                self.assertIsNotNone(ph["e2e_ms"][k])
        # Warm-up (1 per client) + measured requests; every prompt distinct and starting differently.
        self.assertEqual(len(srv.stream_bodies), (1 + 3) * (1 + 4))
        prompts = [b["prompt"] for b in srv.stream_bodies]
        self.assertEqual(len(set(prompts)), len(prompts))
        self.assertEqual(len({p.split()[1] for p in prompts}), len(prompts))
        for b in srv.stream_bodies:
            self.assertEqual(b["temperature"], 0)
            self.assertTrue(b["ignore_eos"])

    def test_keep_alive_reuses_one_connection_per_client_and_survives_a_closed_one(self):
        srv = MockOpenAI(owned_by="llamacpp", keep_alive=True, drop_every=4)
        try:
            rc, rep = run_json(["--url", srv.url, "--clients", "2", "--requests-per-client", "6",
                                "--prompt-tokens", "20", "--max-tokens", "3", "--keep-alive"])
            rc_new, rep_new = run_json(["--url", srv.url, "--clients", "2", "--requests-per-client", "3",
                                        "--prompt-tokens", "20", "--max-tokens", "3"])
        finally:
            srv.stop()
        self.assertEqual(rc, 0)
        self.assertTrue(rep["setup"]["keep_alive"])
        ph = rep["phases"][0]
        self.assertEqual((ph["requests"], ph["requests_ok"], ph["errors"]), (12, 12, 0))
        # 14 streams (2 warm-ups): each silent close (every 4th stream) costs its client one new connection.
        ports = srv.stream_ports[:14]
        self.assertEqual(len(ports), 14)
        self.assertEqual(len(set(ports)), 2 + 14 // 4)
        # Without --keep-alive every request has its own connection.
        self.assertEqual(rc_new, 0)
        self.assertFalse(rep_new["setup"]["keep_alive"])
        self.assertEqual(rep_new["phases"][0]["errors"], 0)
        self.assertEqual(len(set(srv.stream_ports[14:])), 8)

    def test_unknown_server_stops_early_counted_from_chunks_with_failures(self):
        srv = MockOpenAI(owned_by="someone", tokenize=False, usage=False, eos_after=3, fail_every=5)
        try:
            rc, rep = run_json(["--url", srv.url, "--clients", "2", "--requests-per-client", "5",
                                "--prompt-tokens", "30", "--max-tokens", "8", "--chat"])
        finally:
            srv.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(rep["setup"]["prompt_method"], "usage")
        self.assertFalse(rep["setup"]["ignore_eos"])
        ph = rep["phases"][0]
        total = len(srv.stream_bodies)
        self.assertEqual(total, 2 * (1 + 5))
        self.assertEqual(ph["requests"], 10)
        self.assertEqual(ph["errors"] + ph["warmup_errors"], total // 5)
        self.assertEqual(ph["requests_ok"] + ph["errors"], ph["requests"])
        self.assertEqual(ph["output_tokens"], 3 * ph["requests_ok"])  # stopped at "EOS", counted as streamed
        self.assertEqual(ph["stopped_early"], ph["requests_ok"])
        self.assertEqual(ph["token_count_source"], "chunks")
        if ph["errors"]:
            self.assertIn("HTTP 500", next(iter(ph["error_messages"])))
        for b in srv.stream_bodies:
            self.assertNotIn("ignore_eos", b)
            self.assertIn("messages", b)

    def test_shared_prefix_is_common_and_counted(self):
        srv = MockOpenAI(owned_by="vllm")
        try:
            rc, rep = run_json(["--url", srv.url, "--clients", "2", "--requests-per-client", "2",
                                "--prompt-tokens", "60", "--shared-prefix-tokens", "20", "--max-tokens", "2"])
        finally:
            srv.stop()
        self.assertEqual(rc, 0)
        prompts = [b["prompt"] for b in srv.stream_bodies]
        prefixes = {p.split("\n")[0] for p in prompts}
        self.assertEqual(len(prefixes), 1)
        # BOS + "Shared context:" (2) + 17 words = 20 tokens.
        self.assertEqual(len(prefixes.pop().split()), 19)
        self.assertEqual(len({p.split("\n")[1] for p in prompts}), len(prompts))
        self.assertEqual(rep["phases"][0]["prompt_tokens_reported"]["max"], 60)

    def test_duration_mode_is_bounded(self):
        srv = MockOpenAI()
        try:
            rc, rep = run_json(["--url", srv.url, "--clients", "2", "--duration", "0.5", "--warmup", "0",
                                "--prompt-tokens", "20", "--max-tokens", "2"])
        finally:
            srv.stop()
        self.assertEqual(rc, 0)
        ph = rep["phases"][0]
        self.assertGreaterEqual(ph["requests"], 2)  # at least one per client, however slow the machine
        self.assertEqual(ph["errors"], 0)
        self.assertEqual(len(srv.stream_bodies), ph["requests"])

    def test_json_schema_goes_out_as_strict_response_format(self):
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(schema, f)
        srv = MockOpenAI(owned_by="vllm")
        try:
            rc, rep = run_json(["--url", srv.url, "--clients", "1", "--requests-per-client", "2",
                                "--prompt-tokens", "20", "--max-tokens", "2", "--json-schema", f.name])
        finally:
            srv.stop()
            os.unlink(f.name)
        self.assertEqual(rc, 0)
        self.assertEqual(rep["setup"]["json_schema"], schema)
        self.assertEqual(len(srv.stream_bodies), 3)
        for b in srv.stream_bodies:
            self.assertEqual(b["response_format"], {"type": "json_schema",
                                                    "json_schema": {"name": "load", "strict": True, "schema": schema}})
        err = io.StringIO()
        with self.assertRaises(SystemExit), redirect_stderr(err):
            sl.parse_args(["--json-schema", "/nonexistent/schema.json"])
        self.assertIn("--json-schema /nonexistent/schema.json", err.getvalue())

    def test_bad_arguments_are_named(self):
        for argv, name in ((["--clients", "0"], "--clients"), (["--max-tokens", "0"], "--max-tokens"),
                           (["--prompt-tokens", "10", "--shared-prefix-tokens", "10"], "--shared-prefix-tokens"),
                           (["--clients", "a,b"], "--clients")):
            err = io.StringIO()
            with self.assertRaises(SystemExit), redirect_stderr(err):
                sl.parse_args(argv)
            self.assertIn(name, err.getvalue())


from contextlib import redirect_stderr  # noqa: E402

if __name__ == "__main__":
    unittest.main()
