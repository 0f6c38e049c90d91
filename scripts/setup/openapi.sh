#!/usr/bin/env bash
# What the OpenAPI test (tests/access_matrix.rs) needs, installed only if
# missing: Python's openapi-spec-validator from PyPI, which validates the
# document the real collector serves (OpenAPI 3.1).
set -euo pipefail
if python3 -c 'import openapi_spec_validator' 2>/dev/null; then
  echo "openapi setup: ok (python3 openapi-spec-validator $(python3 -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))'))"
  exit 0
fi
command -v pip3 >/dev/null || { . "$(dirname "$0")/../lib/apt.sh"; apt_install python3-pip; }
pip3 install --break-system-packages 'openapi-spec-validator>=0.7,<0.10'
echo "openapi setup: installed"
