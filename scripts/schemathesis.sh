#!/usr/bin/env bash
# Checks the admin API against its own OpenAPI document with schemathesis (PyPI): a live
# `webhook-guard serve` on a free loopback port and a fresh data directory, authenticated with
# the API key --bootstrap prints, every operation, schemathesis' default checks (no 5xx, status
# codes, content types, headers and bodies as documented).
#
#   scripts/schemathesis.sh                      # CI: 100 examples per operation, <= 150 s
#   EXAMPLES=1000 MAX_TIME=1800 scripts/schemathesis.sh   # longer
#
# Needs: python3 with pip (installs schemathesis and openapi-spec-validator if missing), and a
# built binary (cargo build --features cli; BIN overrides the path).
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${EXAMPLES:-100}
MAX_TIME=${MAX_TIME:-150}
BIN=${BIN:-target/debug/webhook-guard}
SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.7.2

if ! schemathesis --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
    python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
    python3 -m pip install --quiet "openapi-spec-validator==$VALIDATOR_VERSION"
fi
[ -x "$BIN" ] || cargo build --features cli

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --data-dir "$work/data" --bootstrap --listen "127.0.0.1:$port" \
    --admin-writes-per-second 100000 --admin-write-burst 100000 \
    --failed-logins-per-second 100000 --failed-login-burst 100000 \
    --upstream-allow 0.0.0.0/0 --upstream-allow ::/0 >"$work/out" 2>"$work/err" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    grep -q '^export WG_API_KEY=' "$work/out" 2>/dev/null && break
    sleep 0.1
done
key=$(sed -n 's/^export WG_API_KEY=//p' "$work/out")
[ -n "$key" ] || { cat "$work/out" "$work/err" >&2; echo "serve did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"

curl -fsS "$base/v1/openapi.json" -o "$work/openapi.json"
python3 -c 'import json, sys
from openapi_spec_validator import validate
validate(json.load(open(sys.argv[1])))
print("openapi-spec-validator: the document is valid OpenAPI", json.load(open(sys.argv[1]))["openapi"])' "$work/openapi.json"

# Every default check on every operation; scripts/schemathesis.toml switches
# positive_data_acceptance off for the two operations that take an upstream URL (and says why).
schemathesis --config-file scripts/schemathesis.toml run "$base/v1/openapi.json" \
    --header "x-api-key: $key" \
    --max-examples "$EXAMPLES" \
    --max-time "$MAX_TIME" \
    --workers 1 \
    --seed "${SEED:-20261203}"
