#!/usr/bin/env python3
"""Closed-loop serving load generator for any OpenAI-compatible server (orcd serve, llama-server, vLLM).

C clients each send streamed /v1/completions (or /v1/chat/completions with --chat) requests one after another, with a
prompt of about --prompt-tokens tokens and greedy decoding of up to --max-tokens tokens. For each client count in
--clients it reports aggregate output tokens/s, time to first token (TTFT), time per output token after the first
(TPOT), end-to-end latency (p50/p90/p99) and request errors; --json prints one machine-readable object.

Python 3 standard library only, so that the same file runs on a device machine with a plain python3.

Prompts: every request's prompt starts with its own random id and random words, so no server cache is hit unless
--shared-prefix-tokens K puts the same K-token prefix in front of every prompt. The token count is made right for the
server under test: where it has a /tokenize endpoint (llama-server, vLLM) each prompt is fitted to the exact count;
elsewhere (orcd) the words-per-token ratio is calibrated from the prompt_tokens the server reports for a few sample
prompts. The report names the method and the prompt lengths the server itself reported during the run.

Output tokens are counted from the server's usage report (stream_options.include_usage) when it sends one, else as
the number of streamed chunks that carried text; servers that stop early at EOS (random-weight models do) are counted
for the tokens they actually streamed. `ignore_eos` is sent only to servers known to accept it (llama-server, vLLM,
SGLang).
"""

import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

# Common English words; with a leading space most are one token in the BPE and SentencePiece vocabularies users run.
WORDS = (
    "the of and to in is was for on are with as be at by this had not but from have they which one you were all her "
    "she there would their we him been has when who will more if no out so said what up its about than into them can "
    "only other new some could time these two may then do first any my now such like our over man me even most made "
    "after also did many before must through back years where much your way well down should because each just those "
    "people how too little state good very make world still own see men work long get here between both life being "
    "under never day same another know while last might us great old year off come since against go came right used "
    "take three states himself few house use during without again place around however home small found thought went "
    "say part once general high upon school every does got united left number course war until always away something "
    "fact though water less public put think almost hand enough far took head yet government system better set told "
    "nothing night end why called didn find going look asked later point knew city next program business give group "
    "toward young days let room president side social given present several order national possible rather second "
    "face per among form important often things looked early white case john become large big need four within felt "
    "along children saw best church ever least power development light thing seemed family interest want members mind"
).split()


# --- statistics ----------------------------------------------------------------------------------------------------

def percentile(values, p):
    """The p-th percentile (0..100) by linear interpolation between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile: expected p in [0, 100], found {p}")
    xs = sorted(values)
    rank = (len(xs) - 1) * p / 100.0
    lo = int(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def summarize(values, scale=1.0):
    """p50/p90/p99/mean/min/max of values times scale, or all None when there are none."""
    if not values:
        return {k: None for k in ("p50", "p90", "p99", "mean", "min", "max")}
    return {
        "p50": percentile(values, 50) * scale,
        "p90": percentile(values, 90) * scale,
        "p99": percentile(values, 99) * scale,
        "mean": sum(values) / len(values) * scale,
        "min": min(values) * scale,
        "max": max(values) * scale,
    }


# --- one streamed request ------------------------------------------------------------------------------------------

class StreamResult:
    """What one streamed request produced, with timestamps relative to when it was sent."""

    def __init__(self):
        self.ok = False
        self.error = None
        self.ttft = None           # seconds from sending to the first chunk that carried text
        self.last_token_at = None  # seconds from sending to the last chunk that carried text
        self.e2e = None            # seconds from sending to the end of the stream
        self.text_chunks = 0       # chunks that carried text
        self.usage_completion_tokens = None
        self.usage_prompt_tokens = None
        self.finish_reason = None
        self.done = False          # saw "data: [DONE]"

    @property
    def output_tokens(self):
        """The server's own count when it reported usage, else the text chunks (one token each on known servers)."""
        return self.usage_completion_tokens if self.usage_completion_tokens is not None else self.text_chunks

    @property
    def tpot(self):
        """Seconds per output token after the first; None with fewer than two tokens."""
        n = self.output_tokens
        if self.ttft is None or self.last_token_at is None or n < 2:
            return None
        return (self.last_token_at - self.ttft) / (n - 1)


def chunk_text(event, chat):
    """The text a parsed SSE chunk carries ("" for role-only, final and usage chunks)."""
    choices = event.get("choices") or []
    if not choices:
        return ""
    c = choices[0]
    if chat:
        return (c.get("delta") or {}).get("content") or ""
    return c.get("text") or ""


def consume_sse_line(result, line, chat, now):
    """Folds one line of the event stream into result; `now` is seconds since the request was sent."""
    line = line.rstrip("\r\n")
    if not line.startswith("data:"):
        return  # blank separators, comments (": keep-alive"), event names
    data = line[5:].strip()
    if data == "[DONE]":
        result.done = True
        return
    event = json.loads(data)
    if "error" in event:
        raise RuntimeError(f"error event in stream: {json.dumps(event['error'])[:300]}")
    if chunk_text(event, chat):
        result.text_chunks += 1
        if result.ttft is None:
            result.ttft = now
        result.last_token_at = now
    for c in event.get("choices") or []:
        if c.get("finish_reason"):
            result.finish_reason = c["finish_reason"]
    usage = event.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("completion_tokens"), int):
            result.usage_completion_tokens = usage["completion_tokens"]
        if isinstance(usage.get("prompt_tokens"), int):
            result.usage_prompt_tokens = usage["prompt_tokens"]


class Server:
    """The server under test: base URL, auth, and the JSON calls the generator makes outside the timed streams."""

    def __init__(self, url, api_key=None, timeout=60.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"--url: expected http://HOST:PORT, found {url!r}")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.base = u.path.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def connect(self, timeout):
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)

    def headers(self):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def call(self, method, path, body=None):
        """(status, parsed JSON or None) of a plain request."""
        conn = self.connect(self.timeout)
        try:
            conn.request(method, self.base + path, body=None if body is None else json.dumps(body),
                         headers=self.headers())
            resp = conn.getresponse()
            raw = resp.read(16 << 20)
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                return resp.status, None
        finally:
            conn.close()

    def stream(self, path, body, chat, deadline, pool=None):
        """Sends one streamed request and reads it to the end, or until the absolute monotonic `deadline`.

        `pool` (a one-element list, or None) holds the connection a client reuses (--keep-alive): the request goes on
        it when it is open, and a connection that ended a complete stream is left there for the next request. A
        reused connection the server has closed meanwhile (its keep-alive idle limit) is replaced once, before
        anything of the request was read: that retry is not a request error."""
        r = StreamResult()
        t0 = time.monotonic()
        conn = None
        try:
            for attempt in (0, 1):
                reused = pool is not None and pool[0] is not None
                conn = pool[0] if reused else self.connect(max(0.1, deadline - t0))
                if pool is not None:
                    pool[0] = None  # put back only after a complete stream
                if reused and conn.sock is not None:
                    conn.sock.settimeout(max(0.1, deadline - t0))
                try:
                    conn.request("POST", self.base + path, body=json.dumps(body), headers=self.headers())
                    resp = conn.getresponse()
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    conn.close()
                    conn = None
                    if not reused or attempt == 1:
                        raise
                    t0 = time.monotonic()  # the request is timed from the connection it actually went on
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {resp.read(500).decode('utf-8', 'replace')}")
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError("request deadline passed mid-stream")
                line = resp.readline(1 << 20)
                if not line:
                    break
                consume_sse_line(r, line.decode("utf-8"), chat, time.monotonic() - t0)
            r.e2e = time.monotonic() - t0
            if not r.done:
                raise RuntimeError("stream ended without data: [DONE]")
            r.ok = True
            if pool is not None and not resp.will_close:
                pool[0], conn = conn, None
        except Exception as e:  # every failure is a counted request error, never a crash of the run
            r.error = f"{type(e).__name__}: {e}"
            r.e2e = time.monotonic() - t0
        finally:
            if conn is not None:
                conn.close()
        return r


# --- prompts -------------------------------------------------------------------------------------------------------

def words_text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


class TokenizeCounter:
    """Exact prompt token counts (BOS included, as a completion counts them) from the server's /tokenize, in
    llama-server's or vLLM's request shape."""

    def __init__(self, server, model):
        self.server = server
        self.model = model
        self.shape = None

    def probe(self):
        for shape in ("llama", "vllm"):
            self.shape = shape
            try:
                if self.count("hello world") > 0:
                    return True
            except Exception:
                pass
        self.shape = None
        return False

    def count(self, text):
        if self.shape == "llama":
            body = {"content": text, "add_special": True}
        else:
            body = {"model": self.model, "prompt": text, "add_special_tokens": True}
        status, j = self.server.call("POST", "/tokenize", body)
        if status != 200 or not isinstance(j, dict) or not isinstance(j.get("tokens"), list):
            raise RuntimeError(f"/tokenize answered HTTP {status}")
        return len(j["tokens"])


class UsageCounter:
    """Prompt token counts from the usage a server reports for a one-token completion (any OpenAI server)."""

    def __init__(self, server, model, chat):
        self.server = server
        self.model = model
        self.chat = chat
        self.requests = 0  # calibration requests sent (reported: they are completions the server counts too)

    def count(self, text):
        self.requests += 1
        body = {"model": self.model, "max_tokens": 1, "temperature": 0, "stream": False}
        if self.chat:
            body["messages"] = [{"role": "user", "content": text}]
        else:
            body["prompt"] = text
        status, j = self.server.call("POST", "/v1/chat/completions" if self.chat else "/v1/completions", body)
        usage = j.get("usage") if isinstance(j, dict) else None
        if status != 200 or not isinstance(usage, dict) or not isinstance(usage.get("prompt_tokens"), int):
            raise RuntimeError(f"calibration request answered HTTP {status} without usage.prompt_tokens: {j}")
        return usage["prompt_tokens"]


def fit_words(count, make_text, target, first_guess, max_rounds=12):
    """The word count n whose make_text(n) has `target` tokens by count(), or the largest n that stays below it.

    Returns (n, tokens). count(make_text(n)) grows with n; the search brackets the target and interpolates inside the
    bracket, so words of any tokens-per-word ratio converge in a few calls, and max_rounds bounds it either way."""
    lo = hi = None  # (n, tokens) with tokens < target, and with tokens > target
    n = max(0, first_guess)
    for _ in range(max_rounds):
        tokens = count(make_text(n))
        if tokens == target:
            return n, tokens
        if tokens < target and (lo is None or n > lo[0]):
            lo = (n, tokens)
        if tokens > target and (hi is None or n < hi[0]):
            hi = (n, tokens)
        if hi is not None and hi[0] == 0:
            break
        if lo is not None and hi is not None:
            if hi[0] - lo[0] <= 1:
                break
            n = lo[0] + (target - lo[1]) * (hi[0] - lo[0]) // max(1, hi[1] - lo[1])
            n = min(max(n, lo[0] + 1), hi[0] - 1)
        else:
            n = max(0, n + (target - tokens))
    if lo is None:
        return 0, count(make_text(0))
    return lo


class PromptFactory:
    """Builds every prompt of the run before any timing starts."""

    def __init__(self, counter, method, prompt_tokens, shared_prefix_tokens, seed):
        self.counter = counter
        self.method = method
        self.target = prompt_tokens
        self.seed = seed
        self.prefix = ""
        self.prefix_tokens = 0
        rng = random.Random(f"{seed}-prefix")
        prefix_words = [rng.choice(WORDS) for _ in range(max(0, 4 * shared_prefix_tokens))]
        self.ratio = 1.0  # tokens per word, refined by calibration
        self.overhead = 0
        if method == "usage":
            # Tokens of a request id alone, then of id + 64 words, for two ids: the slope is the tokens per word, the
            # intercept what every prompt pays besides its words (BOS, chat template, the id).
            heads = [self._head(random.Random(f"{seed}-calib-{i}").getrandbits(32)) for i in range(2)]
            bases = [counter.count(h) for h in heads]
            with_words = [counter.count(h + " " + words_text(random.Random(f"{seed}-calib-{i}"), 64))
                          for i, h in enumerate(heads)]
            self.ratio = max(0.25, sum(w - b for w, b in zip(with_words, bases)) / (64.0 * len(heads)))
            self.overhead = sum(bases) / len(bases)
        if shared_prefix_tokens > 0:
            make = lambda n: "Shared context: " + " ".join(prefix_words[:n])
            if method == "tokenize":
                n, self.prefix_tokens = fit_words(counter.count, make, shared_prefix_tokens, shared_prefix_tokens)
            else:
                n = max(0, round((shared_prefix_tokens - 3) / self.ratio))
                head = self._head(0)
                self.prefix_tokens = counter.count(make(n) + "\n" + head) - counter.count(head)
            self.prefix = make(n) + "\n"
        if method == "usage" and self.overhead + self.prefix_tokens > prompt_tokens:
            raise SystemExit(f"error: --prompt-tokens {prompt_tokens}: the shortest prompt this server sees is "
                             f"{self.overhead + self.prefix_tokens:.0f} tokens (BOS, template and request id"
                             f"{', shared prefix' if shared_prefix_tokens else ''}); ask for more")

    @staticmethod
    def _head(uid):
        return f"[req {uid:08x}]"

    def make(self, index):
        """The prompt of request `index`: shared prefix (if any), the request's own id, then its own random words."""
        rng = random.Random(f"{self.seed}-{index}")
        uid = rng.getrandbits(32)
        head = self.prefix + self._head(uid)
        words = [rng.choice(WORDS) for _ in range(4 * self.target + 16)]
        make = lambda n: head + (" " + " ".join(words[:n]) if n else "")
        if self.method == "tokenize":
            guess = self.target - self.prefix_tokens - 8
            n, tokens = fit_words(self.counter.count, make, self.target, guess)
            if tokens > self.target:
                raise SystemExit(f"error: --prompt-tokens {self.target}: the shortest prompt is {tokens} tokens "
                                 "(BOS, request id, shared prefix); ask for more")
        else:
            n = max(0, round((self.target - self.overhead - self.prefix_tokens) / self.ratio))
        return make(n)


# --- the closed loop -----------------------------------------------------------------------------------------------

def request_body(args, model, prompt, ignore_eos):
    body = {
        "model": model,
        "max_tokens": args.max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if args.chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if ignore_eos:
        body["ignore_eos"] = True
    if args.schema is not None:
        # Constrained decoding: OpenAI's structured output, which orcd, llama-server and vLLM accept on both endpoints.
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "load", "strict": True, "schema": args.schema}}
    return body


def run_phase(server, args, model, prompts, clients, ignore_eos):
    """One closed-loop phase with `clients` concurrent clients. Returns (per-request results, wall seconds)."""
    path = "/v1/chat/completions" if args.chat else "/v1/completions"
    lock = threading.Lock()
    next_prompt = [0]

    def take_prompt():
        with lock:
            i = next_prompt[0] % len(prompts)
            next_prompt[0] += 1
            return prompts[i]

    warm_barrier = threading.Barrier(clients + 1)
    start = [None]
    start_event = threading.Event()
    results = [[] for _ in range(clients)]
    warm_errors = []

    def client(c):
        pool = [None] if args.keep_alive else None  # this client's open connection (--keep-alive)
        for _ in range(args.warmup):
            r = server.stream(path, request_body(args, model, take_prompt(), ignore_eos), args.chat,
                              time.monotonic() + args.request_timeout, pool)
            if not r.ok:
                with lock:
                    warm_errors.append(r.error)
        try:
            warm_barrier.wait(timeout=args.request_timeout * max(1, args.warmup) + 60)
        except threading.BrokenBarrierError:
            return
        start_event.wait()
        t_start = start[0]
        end_by = t_start + args.duration if args.duration else None
        n = 0
        while True:
            if end_by is None and n >= args.requests_per_client:
                break
            if end_by is not None and n > 0 and time.monotonic() >= end_by:
                break  # every client sends at least one request, so a phase is never empty
            r = server.stream(path, request_body(args, model, take_prompt(), ignore_eos), args.chat,
                              time.monotonic() + args.request_timeout, pool)
            results[c].append(r)
            n += 1
        if pool is not None and pool[0] is not None:
            pool[0].close()

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    try:
        warm_barrier.wait(timeout=args.request_timeout * max(1, args.warmup) + 60)
    except threading.BrokenBarrierError:
        raise RuntimeError("warm-up did not finish in time")
    start[0] = time.monotonic()
    start_event.set()
    # Every request has its own deadline, so each client ends within requests x timeout (or duration + timeout).
    per_client = (args.duration + args.request_timeout) if args.duration else \
        args.requests_per_client * args.request_timeout
    for t in threads:
        t.join(timeout=max(1.0, start[0] + per_client + 30 - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise RuntimeError("a client did not finish by its deadline")
    wall = time.monotonic() - start[0]
    return [r for rs in results for r in rs], wall, warm_errors


def phase_report(results, wall, clients, args):
    ok = [r for r in results if r.ok]
    errors = [r for r in results if not r.ok]
    out_tokens = sum(r.output_tokens for r in ok)
    early = sum(1 for r in ok if r.output_tokens < args.max_tokens)
    prompt_counts = [r.usage_prompt_tokens for r in ok if r.usage_prompt_tokens is not None]
    error_kinds = {}
    for r in errors:
        key = r.error[:160]
        error_kinds[key] = error_kinds.get(key, 0) + 1
    return {
        "clients": clients,
        "requests": len(results),
        "requests_ok": len(ok),
        "errors": len(errors),
        "error_messages": error_kinds,
        "duration_s": wall,
        "output_tokens": out_tokens,
        "output_tok_per_s": out_tokens / wall if wall > 0 else None,
        "requests_per_s": len(ok) / wall if wall > 0 else None,
        "output_tokens_per_request": summarize([r.output_tokens for r in ok]),
        "stopped_early": early,
        "token_count_source": "usage" if ok and all(r.usage_completion_tokens is not None for r in ok) else
                              ("chunks" if ok and all(r.usage_completion_tokens is None for r in ok) else "mixed"),
        "prompt_tokens_reported": summarize(prompt_counts),
        "ttft_ms": summarize([r.ttft for r in ok if r.ttft is not None], 1000.0),
        "tpot_ms": summarize([r.tpot for r in ok if r.tpot is not None], 1000.0),
        "e2e_ms": summarize([r.e2e for r in ok], 1000.0),
    }


def detect_server(server, model_arg):
    """(model id, server kind) from /v1/models, whose owned_by names the server (llamacpp, vllm, sglang, orcd)."""
    status, j = server.call("GET", "/v1/models")
    data = j.get("data") if isinstance(j, dict) else None
    if status != 200 or not isinstance(data, list) or not data:
        if model_arg:
            return model_arg, "unknown"
        raise RuntimeError(f"GET /v1/models answered HTTP {status} with no model; pass --model")
    entry = next((m for m in data if m.get("id") == model_arg), data[0]) if model_arg else data[0]
    owner = str(entry.get("owned_by", "")).lower()
    kind = {"llamacpp": "llama.cpp", "vllm": "vllm", "sglang": "sglang", "orcd": "orcd"}.get(owner, owner or "unknown")
    return model_arg or entry["id"], kind


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL (default %(default)s)")
    p.add_argument("--model", help="model id (default: the first of /v1/models)")
    p.add_argument("--api-key", help="sent as Authorization: Bearer KEY")
    p.add_argument("--chat", action="store_true", help="use /v1/chat/completions (one user message)")
    p.add_argument("--clients", default="1", help="comma-separated client counts, run in turn (default %(default)s)")
    p.add_argument("--prompt-tokens", type=int, default=100, help="prompt length in tokens (default %(default)s)")
    p.add_argument("--max-tokens", type=int, default=128, help="max new tokens per request (default %(default)s)")
    p.add_argument("--shared-prefix-tokens", type=int, default=0,
                   help="a common prefix of this many tokens in every prompt (default 0: distinct prompts)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--requests-per-client", type=int, default=8, help="measured requests per client (default 8)")
    g.add_argument("--duration", type=float,
                   help="measure for this many seconds instead: clients start requests until then (at least one "
                        "each), in-flight ones finish; prompts repeat after 64 requests per client")
    p.add_argument("--keep-alive", action="store_true",
                   help="each client sends its requests on one connection (HTTP keep-alive), as pooled clients do; "
                        "default: a new connection per request, whose connect and accept count in its TTFT")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured requests per client first (default 1)")
    p.add_argument("--request-timeout", type=float, default=300.0, help="deadline of one request, s (default 300)")
    p.add_argument("--ignore-eos", choices=("auto", "on", "off"), default="auto",
                   help="send ignore_eos: auto = only to llama.cpp, vLLM and SGLang servers, which accept it")
    p.add_argument("--prompt-method", choices=("auto", "tokenize", "usage"), default="auto",
                   help="fit prompts with /tokenize, or calibrate a word list from reported usage (auto: tokenize "
                        "where the server has it)")
    p.add_argument("--seed", type=int, default=0, help="prompt randomness (default 0)")
    p.add_argument("--json-schema", metavar="FILE",
                   help="constrain every reply to the JSON Schema in FILE (response_format json_schema, strict)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    args.schema = None
    if args.json_schema:
        try:
            with open(args.json_schema, encoding="utf-8") as f:
                args.schema = json.load(f)
        except (OSError, ValueError) as e:
            p.error(f"--json-schema {args.json_schema}: {e}")
    try:
        args.client_counts = [int(x) for x in args.clients.split(",")]
    except ValueError:
        p.error(f"--clients: expected comma-separated integers, found {args.clients!r}")
    bad = [(name, v) for name, v in (("--prompt-tokens", args.prompt_tokens), ("--max-tokens", args.max_tokens))
           if v < 1]
    bad += [("--clients", c) for c in args.client_counts if not 1 <= c <= 4096]
    if args.duration is None:
        bad += [("--requests-per-client", args.requests_per_client)] if args.requests_per_client < 1 else []
    elif not 0 < args.duration <= 86400:
        bad.append(("--duration", args.duration))
    if args.warmup < 0:
        bad.append(("--warmup", args.warmup))
    if not 0 < args.request_timeout <= 3600:
        bad.append(("--request-timeout", args.request_timeout))
    if not 0 <= args.shared_prefix_tokens < args.prompt_tokens:
        bad.append(("--shared-prefix-tokens", f"{args.shared_prefix_tokens} (must be below --prompt-tokens)"))
    for name, v in bad:
        p.error(f"{name}: out of range: {v}")
    return args


def print_table(report, out):
    s = report["setup"]
    print(f"server {s['url']} ({s['server_kind']}), model {s['model']}, "
          f"{'chat' if s['chat'] else 'completions'}, prompt {s['prompt_tokens']} tokens "
          f"(method {s['prompt_method']}, shared prefix {s['shared_prefix_tokens']}), max_tokens {s['max_tokens']}, "
          f"ignore_eos {'on' if s['ignore_eos'] else 'off'}, "
          f"{'keep-alive' if s['keep_alive'] else 'a connection per request'}", file=out)
    hdr = ("clients", "reqs", "errors", "out tok/s", "req/s", "TTFT p50/p90/p99 ms", "TPOT p50/p90/p99 ms",
           "E2E p50/p90/p99 ms", "tok/req", "early", "prompt tok")
    print(" | ".join(hdr), file=out)

    def trio(d):
        return "/".join("-" if d[k] is None else f"{d[k]:.1f}" for k in ("p50", "p90", "p99"))

    for ph in report["phases"]:
        tpr = ph["output_tokens_per_request"]["mean"]
        pt = ph["prompt_tokens_reported"]["mean"]
        print(" | ".join([
            str(ph["clients"]), str(ph["requests"]), str(ph["errors"]),
            f"{ph['output_tok_per_s']:.1f}" if ph["output_tok_per_s"] is not None else "-",
            f"{ph['requests_per_s']:.2f}" if ph["requests_per_s"] is not None else "-",
            trio(ph["ttft_ms"]), trio(ph["tpot_ms"]), trio(ph["e2e_ms"]),
            "-" if tpr is None else f"{tpr:.1f}", str(ph["stopped_early"]),
            "-" if pt is None else f"{pt:.1f}"]), file=out)
        for msg, n in ph["error_messages"].items():
            print(f"  {n} x {msg}", file=out)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    server = Server(args.url, args.api_key, timeout=args.request_timeout)
    model, kind = detect_server(server, args.model)
    ignore_eos = args.ignore_eos == "on" or (args.ignore_eos == "auto" and kind in ("llama.cpp", "vllm", "sglang"))

    method = args.prompt_method
    counter = None
    if method in ("auto", "tokenize"):
        tc = TokenizeCounter(server, model)
        if tc.probe():
            method, counter = "tokenize", tc
        elif method == "tokenize":
            raise SystemExit("error: --prompt-method tokenize: the server has no usable /tokenize endpoint")
        else:
            method = "usage"
    if method == "usage":
        counter = UsageCounter(server, model, args.chat)
    factory = PromptFactory(counter, method, args.prompt_tokens, args.shared_prefix_tokens, args.seed)

    phases = []
    for i, clients in enumerate(args.client_counts):
        # Enough distinct prompts that no request of the run repeats another's (a fixed run), or a large pool that
        # is cycled (a duration run: repeats are far apart).
        n = clients * ((args.requests_per_client if not args.duration else 64) + args.warmup)
        prompts = [factory.make(i * 1_000_000 + k) for k in range(n)]
        results, wall, warm_errors = run_phase(server, args, model, prompts, clients, ignore_eos)
        rep = phase_report(results, wall, clients, args)
        rep["warmup_errors"] = len(warm_errors)
        phases.append(rep)

    report = {
        "setup": {
            "url": args.url, "model": model, "server_kind": kind, "chat": args.chat,
            "prompt_tokens": args.prompt_tokens, "prompt_method": method,
            "shared_prefix_tokens": args.shared_prefix_tokens, "max_tokens": args.max_tokens,
            "ignore_eos": ignore_eos, "temperature": 0, "keep_alive": args.keep_alive, "warmup_per_client": args.warmup,
            "requests_per_client": None if args.duration else args.requests_per_client,
            "duration_s": args.duration, "seed": args.seed, "json_schema": args.schema,
            "tokens_per_word": factory.ratio if method == "usage" else None,
            "calibration_requests": counter.requests if method == "usage" else 0,
        },
        "phases": phases,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print_table(report, sys.stdout)
    return 1 if any(ph["requests_ok"] == 0 for ph in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
