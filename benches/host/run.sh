#!/usr/bin/env bash
# Host throughput on loopback, next to node-oidc-provider 9.x in the same run:
# client-credentials issuance and introspection, plus the machine's raw
# RSA-2048 signing rate (openssl speed). Prints a Markdown table.
#
#   benches/host/run.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-15}
conns=64
root=$(cd ../.. && pwd)

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -d node_modules/oidc-provider ] || npm install --no-audit --no-fund --silent
(cd "$root" && cargo build --release -p erpgate-cli --locked -q)

data=$(mktemp -d)
cleanup() { kill "${host_pid:-}" "${node_pid:-}" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

ERPGATE_ADMIN_TOKEN=bench-admin-credential-0123456789abcdef RUST_LOG=warn "$root/target/release/erpgate" --demo serve --data "$data" --listen 127.0.0.1:18700 --admin-listen 127.0.0.1:18701 >/dev/null 2>&1 &
host_pid=$!
PORT=18800 node oidc-provider.mjs >/dev/null 2>&1 &
node_pid=$!
for _ in $(seq 50); do
  curl -sf http://127.0.0.1:18700/health >/dev/null && curl -sf http://127.0.0.1:18800/.well-known/openid-configuration >/dev/null && break
  sleep 0.2
done

b64() { printf '%s' "$1" | base64 -w0; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

erp_basic=$(b64 demo.service:demo-service-secret)
edge_basic=$(b64 erpgate.edge:demo-edge-secret)
node_basic=$(b64 bench:bench-secret)

jwt=$(curl -sf -H "Authorization: Basic $erp_basic" -d grant_type=client_credentials http://127.0.0.1:18700/id/connect/token | json access_token)
pat=$(curl -sf -H 'Authorization: Bearer bench-admin-credential-0123456789abcdef' -H 'content-type: application/json' \
  -d '{"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1}' \
  http://127.0.0.1:18701/admin/reference-tokens | json token)
node_token=$(curl -sf -H "Authorization: Basic $node_basic" -d grant_type=client_credentials -d scope=read http://127.0.0.1:18800/token | json access_token)

run() { # name url basic body
  local out
  out=$(BODY="$4" BASIC="$3" wrk -t2 -c"$conns" -d"${secs}s" --latency -s post.lua "$2")
  local rps p50 p99 bad
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses/ {n=$5} /Socket errors/ {n+=0} END {print n+0}' <<<"$out")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "$bad"
}

echo "| run ($conns connections, ${secs}s, wrk -t2, loopback) | requests/s | p50 | p99 | non-200 |"
echo "|---|---|---|---|---|"
run "erpgate: client credentials (RS256 JWT)" http://127.0.0.1:18700/id/connect/token "$erp_basic" "grant_type=client_credentials&scope=read"
run "node-oidc-provider: client credentials (opaque)" http://127.0.0.1:18800/token "$node_basic" "grant_type=client_credentials&scope=read"
run "erpgate: introspection of a PAT" http://127.0.0.1:18700/id/connect/introspect "$edge_basic" "token=$pat"
run "erpgate: introspection of a JWT" http://127.0.0.1:18700/id/connect/introspect "$edge_basic" "token=$jwt"
run "node-oidc-provider: introspection" http://127.0.0.1:18800/token/introspection "$node_basic" "token=$node_token"

sign=$(openssl speed -seconds 5 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}')
echo
echo "openssl speed rsa2048, same machine, same run: $sign signs/s (all cores: run with -multi 2 for both)"
sign2=$(openssl speed -multi 2 -seconds 5 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}')
echo "openssl speed -multi 2 rsa2048: $sign2 signs/s"
