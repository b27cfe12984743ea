#!/usr/bin/env python3
"""End to end: for each corpus schema and a few seeds, `orcd generate --device cpu --json-schema` from a random-weight
synth model (Qwen2.5's real 152k vocabulary) must produce output that is complete, parses as JSON and validates with
python3-jsonschema. Random weights are the hard case: nothing in the model helps.

Strings without maxLength are bounded (--schema-max-string) so that each run ends well within -n tokens; the
output is still checked against the unmodified schema. Exits 77 (ctest SKIP) when the shared vocabulary is absent."""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from schema_validation import validator  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--orcd", required=True)
ap.add_argument("--vocab", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--seeds", type=int, default=2)
ap.add_argument("--max-tokens", type=int, default=384)
ap.add_argument("--only", nargs="*", help="schema file names to run (default: all)")
args = ap.parse_args()

if not pathlib.Path(args.vocab).exists():
    print(f"SKIP: no {args.vocab}")
    sys.exit(77)
work = pathlib.Path(args.work)
work.mkdir(parents=True, exist_ok=True)
model = work / "e2e-qwen2.5-tiny-q8_0.gguf"
if not model.exists():
    subprocess.run([args.orcd, "synth", "--preset", "qwen2.5-tiny", "--type", "Q8_0", "--vocab", args.vocab,
                    "--seed", "17", "-o", str(model)], check=True, stdout=subprocess.DEVNULL)

failures, runs, tokens = 0, 0, 0
for path in sorted((pathlib.Path(__file__).parent / "schemas").glob("*.json")):
    if args.only and path.name not in args.only:
        continue
    case = json.loads(path.read_text(encoding="utf-8"))
    v = validator(case["schema"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=work) as f:
        json.dump(case["schema"], f)
        schema_file = f.name
    for seed in range(1, args.seeds + 1):
        runs += 1
        cmd = [args.orcd, "generate", "-m", str(model), "--device", "cpu", "-t", "2", "--json",
               "-p", "Answer in JSON: " + case["description"], "-n", str(args.max_tokens), "-s", str(seed),
               "--temp", "1.0", "--schema-max-string", "24", "--json-schema", "@" + schema_file]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        where = f"{path.name} seed {seed}"
        if p.returncode != 0:
            failures += 1
            print(f"FAIL {where}: exit {p.returncode}: {p.stderr.strip()[-500:]}")
            continue
        out = json.loads(p.stdout)
        tokens += len(out["tokens"])
        text = out["text"]
        if not out.get("grammar_complete"):
            failures += 1
            print(f"FAIL {where}: incomplete after {len(out['tokens'])} tokens ({out['stop_reason']}): {text!r}")
            continue
        try:
            inst = json.loads(text)
        except json.JSONDecodeError as e:
            failures += 1
            print(f"FAIL {where}: not JSON ({e}): {text!r}")
            continue
        errors = list(v.iter_errors(inst))
        if errors:
            failures += 1
            print(f"FAIL {where}: {errors[0].message}: {text!r}")
            continue
        print(f"ok   {where}: {len(out['tokens'])} tokens: {text[:100]!r}")
    pathlib.Path(schema_file).unlink()
print(f"{runs} runs, {tokens} tokens, {failures} failures")
sys.exit(1 if failures or runs == 0 else 0)
