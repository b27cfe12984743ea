#!/usr/bin/python3
"""Parses Prometheus text exposition (stdin) with the reference parser (Debian's python3-prometheus-client) and prints
{"family": {"type": ..., "samples": [[name, {labels}, value], ...]}} as JSON. Exits 1 when the text does not parse."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    out = {}
    try:
        for fam in text_string_to_metric_families(text):
            if fam.name in out:
                raise ValueError(f"metric family {fam.name} appears twice")
            out[fam.name] = {
                "type": fam.type,
                "samples": [[s.name, dict(s.labels), s.value] for s in fam.samples],
            }
    except Exception as e:  # the parser raises ValueError and others; every one is a failure of the format
        print(f"parse_metrics.py: the metrics text does not parse: {e!r}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
