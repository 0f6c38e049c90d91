#!/usr/bin/env python3
"""Validates JSON lines on stdin against a JSON Schema (argv[1]), with format
checks (date-time, ipv4, ipv6). Prints each invalid line with its errors and
exits 1 if any; prints the count of valid lines and exits 0 otherwise. Used by
tests/agent_output.rs; scripts/setup/schema.sh installs what it needs."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
for needed in ("date-time", "ipv4", "ipv6"):
    if needed not in checker.checkers:
        sys.exit(f"jsonschema cannot check format {needed}: run scripts/setup/schema.sh")
validator = jsonschema.Draft202012Validator(schema, format_checker=checker)
valid = invalid = 0
for n, line in enumerate(sys.stdin, 1):
    line = line.strip()
    if not line:
        continue
    errors = list(validator.iter_errors(json.loads(line)))
    if errors:
        invalid += 1
        if invalid <= 20:
            print(f"line {n}: {line[:300]}")
            for e in errors[:5]:
                print(f"  {list(e.absolute_path)}: {e.message}")
    else:
        valid += 1
print(f"valid {valid} invalid {invalid}")
sys.exit(1 if invalid else 0)
