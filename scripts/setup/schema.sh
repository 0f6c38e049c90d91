#!/usr/bin/env bash
# What the output-contract test (tests/agent_output.rs) needs, installed only if
# missing: Python's jsonschema from PyPI, with the format checkers it validates
# date-time, ipv4 and ipv6 with (rfc3339-validator).
set -euo pipefail
if python3 - <<'PY' 2>/dev/null
import jsonschema
assert "date-time" in jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers
PY
then
  echo "schema setup: ok (python3 jsonschema $(python3 -c 'import importlib.metadata as m; print(m.version("jsonschema"))'))"
  exit 0
fi
command -v pip3 >/dev/null || { . "$(dirname "$0")/../lib/apt.sh"; apt_install python3-pip; }
pip3 install --break-system-packages 'jsonschema>=4.18' rfc3339-validator
echo "schema setup: installed"
