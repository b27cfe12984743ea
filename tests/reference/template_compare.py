#!/usr/bin/env python3
"""Randomized comparison of `orcd template` with Python's jinja2, set up as Hugging Face transformers sets it up.

For every template (the shared corpus, when present, and the feature templates in tests/template/features), renders
random conversations (random roles and contents with Unicode, Jinja and JSON syntax, whitespace; random tool lists
and tool calls) with both engines and compares the output byte for byte; when jinja2 raises, orcd must fail too.

usage: template_compare.py ORCD FEATURE_DIR [CORPUS_DIR] [--seed N] [--count N]
Exit 0 when all agree, 1 on a mismatch, 77 (skip) when jinja2 is not installed.
"""
import argparse
import atexit
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

try:
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("SKIP: python3-jinja2 is not installed")
    sys.exit(77)

FIXED_DATE = datetime.datetime(2026, 7, 26)


class GenerationBlock(Extension):
    """{% generation %}...{% endgeneration %}: renders its body unchanged (transformers marks assistant text so)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

    def _render_body(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: FIXED_DATE.strftime(fmt)
    return env


PIECES = [
    "Hello", "world", " ", "  ", "\n", "\n\n", "\t", "?", "!", "é", "日本語", "Ωμέγα", "🙂", "👩‍💻", "\u00a0",
    "{{ x }}", "{% if %}", "{#", "#}", "}}", "{%", "%}", "'", '"', "\\", "\\n", "<|im_end|>", "<s>", "</s>",
    "[INST]", "<|eot_id|>", '{"a": [1, 2]}', "null", "True", "a,b", "line\r\nbreak", "<think>", "</think>", "0",
    "   lead", "trail   ", "λx.x", "%s", "{}", "_", "-",
]
ROLES = ["system", "user", "assistant", "tool", "user", "assistant", "user"]


def rand_text(rng):
    n = rng.choice([0, 1, 2, 3, 5, 8])
    return "".join(rng.choice(PIECES) for _ in range(n))


def rand_tools(rng):
    tools = []
    for i in range(rng.randint(1, 3)):
        props = {}
        for j in range(rng.randint(0, 3)):
            props[f"p{j}_{rng.choice(['city', 'n', 'unité'])}"] = {
                "type": rng.choice(["string", "integer", "boolean"]), "description": rand_text(rng)}
        tools.append({"type": "function", "function": {
            "name": f"tool_{i}_{rng.choice(['get', 'set', 'søk'])}", "description": rand_text(rng),
            "parameters": {"type": "object", "properties": props, "required": list(props)[:1]}}})
    return tools


def rand_messages(rng, with_tools):
    msgs = []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": rand_text(rng)})
    strict = rng.random() < 0.7  # mostly well-formed alternation, sometimes anything goes
    for i in range(rng.randint(1, 5)):
        if strict:
            role = "user" if i % 2 == 0 else "assistant"
        else:
            role = rng.choice(ROLES)
        m = {"role": role, "content": rand_text(rng)}
        if role == "assistant" and with_tools and rng.random() < 0.4:
            args = {"city": rand_text(rng), "n": rng.randint(-5, 500)}
            m["tool_calls"] = [{"id": f"call_{i}", "type": "function", "function": {
                "name": "tool_0_get", "arguments": json.dumps(args) if rng.random() < 0.5 else args}}]
            if rng.random() < 0.5:
                m["content"] = None
            msgs.append(m)
            msgs.append({"role": "tool", "tool_call_id": f"call_{i}", "name": "tool_0_get",
                         "content": rand_text(rng)})
            continue
        msgs.append(m)
    if strict and msgs[-1]["role"] == "assistant" and rng.random() < 0.7:
        msgs.append({"role": "user", "content": rand_text(rng)})
    return msgs


def render_jinja(env, source, ctx):
    try:
        return True, env.from_string(source).render(**ctx)
    except Exception as e:  # any exception: transformers raises, so orcd must fail
        return False, f"{type(e).__name__}: {e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("orcd")
    ap.add_argument("feature_dir")
    ap.add_argument("corpus_dir", nargs="?")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--count", type=int, default=4, help="conversations per template")
    a = ap.parse_args()

    templates = []
    for d in [a.feature_dir] + ([a.corpus_dir] if a.corpus_dir and os.path.isdir(a.corpus_dir) else []):
        for f in sorted(os.listdir(d)):
            if f.endswith(".jinja"):
                templates.append(os.path.join(d, f))
    bos_eos = {}
    if a.corpus_dir and os.path.exists(os.path.join(a.corpus_dir, "index.json")):
        index = json.load(open(os.path.join(a.corpus_dir, "index.json")))
        entries = index if isinstance(index, list) else [dict(v, file=k) for k, v in index.items()]
        for e in entries:
            if isinstance(e, dict) and "file" in e:
                bos_eos[e["file"]] = (e.get("bos_token", ""), e.get("eos_token", ""))

    rng = random.Random(a.seed)
    env = make_env()
    tmp = tempfile.mkdtemp(prefix="orcd-template-compare-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    total = mismatches = errors_agreed = 0
    for path in templates:
        source = open(path, encoding="utf-8").read()
        bos, eos = bos_eos.get(os.path.basename(path), ("<s>", "</s>"))
        for _ in range(a.count):
            with_tools = "tools" in source and rng.random() < 0.6
            tools = rand_tools(rng) if with_tools else None
            msgs = rand_messages(rng, with_tools)
            gen = rng.random() < 0.6
            ctx = {"messages": msgs, "add_generation_prompt": gen, "bos_token": bos, "eos_token": eos,
                   "tools": tools, "documents": None}
            ok, expected = render_jinja(env, source, ctx)
            mf = os.path.join(tmp, "messages.json")
            with open(mf, "w", encoding="utf-8") as f:
                json.dump(msgs, f, ensure_ascii=False)
            cmd = [a.orcd, "template", "--chat-template-file", path, "--messages", mf, "--bos-token", bos,
                   "--eos-token", eos, "--date", FIXED_DATE.strftime("%Y-%m-%d")]
            if tools is not None:
                tf = os.path.join(tmp, "tools.json")
                with open(tf, "w", encoding="utf-8") as f:
                    json.dump(tools, f, ensure_ascii=False)
                cmd += ["--tools", tf]
            if not gen:
                cmd.append("--no-generation-prompt")
            r = subprocess.run(cmd, capture_output=True, timeout=60)
            total += 1
            got = r.stdout.decode("utf-8", "surrogateescape")
            if ok and (r.returncode != 0 or got != expected):
                mismatches += 1
                print(f"MISMATCH {path}\n  messages: {json.dumps(msgs, ensure_ascii=False)}\n  tools: {tools}\n"
                      f"  gen: {gen}\n  jinja2: {expected!r}\n  orcd:   {got!r}\n  stderr: {r.stderr.decode()!r}")
            elif not ok and r.returncode == 0:
                mismatches += 1
                print(f"MISMATCH {path}: jinja2 raised {expected!r} but orcd rendered {got[:200]!r}\n"
                      f"  messages: {json.dumps(msgs, ensure_ascii=False)}")
            elif not ok:
                errors_agreed += 1
    print(f"{total} renders over {len(templates)} templates, {mismatches} mismatches "
          f"({errors_agreed} where both raised)")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
