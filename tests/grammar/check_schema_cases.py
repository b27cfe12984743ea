#!/usr/bin/env python3
"""Checks the corpus's own test cases against the reference validator: every "valid" instance of
tests/grammar/schemas/*.json validates and every "invalid" one does not. The C++ corpus test then checks the grammar
against the same lists, so its expectations come from jsonschema, not from the grammar engine."""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from schema_validation import validator  # noqa: E402

failures = 0
files = sorted((pathlib.Path(__file__).parent / "schemas").glob("*.json"))
for path in files:
    case = json.loads(path.read_text(encoding="utf-8"))
    v = validator(case["schema"])
    for inst in case["valid"]:
        errors = list(v.iter_errors(inst))
        if errors:
            failures += 1
            print(f"{path.name}: valid instance {json.dumps(inst)} fails: {errors[0].message}")
    for inst in case["invalid"]:
        if v.is_valid(inst):
            failures += 1
            print(f"{path.name}: invalid instance {json.dumps(inst)} validates")
print(f"{len(files)} schemas, {failures} failures")
sys.exit(1 if failures or not files else 0)
