#!/usr/bin/env python3
"""bench/serve_load.py against a real `orcd serve --device cpu` on a tiny synth model: a few seconds of load at 1 and
2 clients, then with a shared prefix; the report's fields are checked and its counts are added up against each other
and against the server's own request counter.

Usage: test_serve_load_orcd.py ORCD_BINARY SHARED_DIR. Exits 77 (ctest SKIP) when the shared vocabulary is absent."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "serve_load.py")
MAX_TOKENS = 12
PROMPT_TOKENS = 64


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def start_server(orcd, model, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([orcd, "serve", "-m", model, "--device", "cpu", "--port", "0"], stdout=subprocess.DEVNULL,
                            stderr=log)
    log.close()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with open(log_path) as f:
            m = re.search(r"orcd serve: ready .*address=(http://\S+)", f.read())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    with open(log_path) as f:
        fail(f"orcd serve did not become ready:\n{f.read()}")


def run_load(url, extra):
    argv = [sys.executable, SCRIPT, "--url", url, "--prompt-tokens", str(PROMPT_TOKENS), "--max-tokens",
            str(MAX_TOKENS), "--request-timeout", "60", "--json"] + extra
    r = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    check(r.returncode == 0, f"serve_load.py exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return json.loads(r.stdout)


def check_phase(ph, clients, per_client):
    check(ph["clients"] == clients, f"clients {ph['clients']} != {clients}")
    check(ph["requests"] == clients * per_client, f"{ph['requests']} requests, expected {clients * per_client}")
    check(ph["errors"] == 0 and ph["warmup_errors"] == 0, f"errors: {ph['error_messages']}")
    check(ph["requests_ok"] == ph["requests"], "requests_ok != requests")
    tpr = ph["output_tokens_per_request"]
    check(1 <= tpr["min"] <= tpr["max"] <= MAX_TOKENS, f"tokens per request out of [1, {MAX_TOKENS}]: {tpr}")
    check(abs(tpr["mean"] * ph["requests_ok"] - ph["output_tokens"]) < 1e-6, "output_tokens != mean x requests")
    check(ph["token_count_source"] == "usage", f"orcd reports usage, found {ph['token_count_source']}")
    check((ph["stopped_early"] == 0) == (tpr["min"] == MAX_TOKENS), "stopped_early disagrees with the token counts")
    check(ph["duration_s"] > 0 and abs(ph["output_tok_per_s"] - ph["output_tokens"] / ph["duration_s"]) < 1e-6,
          "output_tok_per_s != output_tokens / duration_s")
    for key in ("ttft_ms", "e2e_ms"):
        d = ph[key]
        check(0 < d["min"] <= d["p50"] <= d["p90"] <= d["p99"] <= d["max"], f"{key} not ordered: {d}")
    check(ph["ttft_ms"]["max"] <= ph["e2e_ms"]["max"], "a first token after the end of its stream")
    pt = ph["prompt_tokens_reported"]
    # Prompts are fitted with orcd's /tokenize (llama-server's shape), which counts what a completion feeds.
    check(abs(pt["mean"] - PROMPT_TOKENS) <= 4, f"prompt tokens {pt} far from {PROMPT_TOKENS}")


def main():
    if len(sys.argv) != 3:
        fail("usage: test_serve_load_orcd.py ORCD_BINARY SHARED_DIR")
    orcd, shared = sys.argv[1], sys.argv[2]
    vocab = os.path.join(shared, "models", "vocab", "ggml-vocab-qwen2.5.gguf")
    if not os.path.exists(vocab):
        print(f"SKIP: {vocab} is absent (shared test data)")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        r = subprocess.run([orcd, "synth", "--preset", "qwen2.5-tiny", "--type", "Q8_0", "--vocab", vocab, "--seed",
                            "1", "-o", model], capture_output=True, text=True, timeout=180)
        check(r.returncode == 0, f"orcd synth failed: {r.stderr}")
        proc, url = start_server(orcd, model, os.path.join(tmp, "serve.log"))
        try:
            rep = run_load(url, ["--clients", "1,2", "--requests-per-client", "3"])
            s = rep["setup"]
            check(s["server_kind"] == "orcd" and s["model"] == "tiny", f"setup: {s}")
            check(s["prompt_method"] == "tokenize", f"orcd has /tokenize: prompts must be fitted with it, found {s}")
            check(s["ignore_eos"] is False, "ignore_eos must not be sent to orcd")
            check([ph["clients"] for ph in rep["phases"]] == [1, 2], "phases")
            check_phase(rep["phases"][0], 1, 3)
            check_phase(rep["phases"][1], 2, 3)

            shared_rep = run_load(url, ["--clients", "2", "--requests-per-client", "2", "--shared-prefix-tokens", "32"])
            check_phase(shared_rep["phases"][0], 2, 2)

            # Each client's requests on one connection (the server keeps it alive between streams).
            kept_rep = run_load(url, ["--clients", "2", "--requests-per-client", "3", "--keep-alive"])
            check(kept_rep["setup"]["keep_alive"] is True, f"setup: {kept_rep['setup']}")
            check_phase(kept_rep["phases"][0], 2, 3)

            # The server's own count: the calibration requests, one warm-up per client, the measured ones.
            expected = sum(x["setup"]["calibration_requests"] + sum(ph["clients"] + ph["requests"] for ph in x["phases"])
                           for x in (rep, shared_rep, kept_rep))
            metrics = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
            m = re.search(r'^worker_requests_total\{model="[^"]*",outcome="success"\} (\S+)$', metrics, re.M)
            if m:
                check(float(m.group(1)) == expected, f"server counted {m.group(1)} successful requests, "
                                                     f"the load generator {expected}")
            else:
                print("note: /metrics has no worker_requests_total{outcome=\"success\"}; server-side count not checked")
            print(json.dumps(rep["phases"][1], indent=1))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    print("PASS")


if __name__ == "__main__":
    main()
