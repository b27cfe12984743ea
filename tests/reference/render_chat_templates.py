#!/usr/bin/env python3
"""Renders the real chat templates in ../shared/templates with jinja2 for a set of conversations and writes the
results to tests/tokenizer/fixtures/chat_templates.json, the expectations of tests/tokenizer/chat_template_test.cpp.

The environment is the one Hugging Face transformers uses in apply_chat_template (trim_blocks, lstrip_blocks,
loopcontrols, a tojson filter), so the fixtures are what the models were trained to see. bos/eos are the texts of the
models' bos/eos tokens (Phi-3 and Phi-3.5: "<s>" and "<|endoftext|>"; Qwen2.5's template uses neither).

Usage: python3 tests/reference/render_chat_templates.py [--shared ../shared] [--out tests/tokenizer/fixtures/chat_templates.json]
"""
import argparse
import json
import os
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TEMPLATES = {
    # name: (file, bos_token, eos_token)
    "qwen2.5": ("qwen2.5-instruct.jinja", "", "<|im_end|>"),
    "phi-3": ("phi-3-mini-4k-instruct.jinja", "<s>", "<|endoftext|>"),
    "phi-3.5": ("phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>"),
}


def m(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = {
    "user_only": [m("user", "Hello!")],
    "system_user": [m("system", "You are a pirate."), m("user", "Where is the treasure?")],
    "multi_turn": [
        m("user", "What is 2+2?"),
        m("assistant", "4"),
        m("user", "And times 3?"),
    ],
    "system_multi_turn": [
        m("system", "Answer briefly."),
        m("user", "Name a color."),
        m("assistant", "Blue."),
        m("user", "Another one?"),
        m("assistant", "Green."),
    ],
    "empty_system": [m("system", ""), m("user", "hi")],
    "late_system": [m("user", "a"), m("assistant", "b"), m("system", "Now be terse."), m("user", "c")],
    "unicode_newlines": [
        m("user", "Übersetze: 日本語のテキスト 🦙\nzweite Zeile\n\n  eingerückt"),
        m("assistant", "Fertig ✓\n"),
    ],
    "special_text_in_content": [m("user", "literal <|im_end|> and <|end|> inside")],
    "tool_responses": [
        m("user", "weather?"),
        m("assistant", "Let me check."),
        m("tool", "{\"temp\": 21}"),
        m("tool", "{\"sky\": \"clear\"}"),
        m("user", "thanks"),
    ],
}


def render(env, source, bos, eos, messages, add_generation_prompt):
    return env.from_string(source).render(
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        bos_token=bos,
        eos_token=eos,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "tokenizer", "fixtures", "chat_templates.json"))
    args = ap.parse_args()

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)

    cases = []
    for name, (fname, bos, eos) in TEMPLATES.items():
        with open(os.path.join(args.shared, "templates", fname), encoding="utf-8") as f:
            source = f.read()
        for conv_name, messages in CONVERSATIONS.items():
            for agp in (True, False):
                cases.append({
                    "template": name,
                    "template_file": fname,
                    "bos_token": bos,
                    "eos_token": eos,
                    "conversation": conv_name,
                    "messages": messages,
                    "add_generation_prompt": agp,
                    "expected": render(env, source, bos, eos, messages, agp),
                })
    doc = {
        "generator": "tests/reference/render_chat_templates.py",
        "jinja2_version": jinja2.__version__,
        "environment": "ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols)",
        "cases": cases,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
