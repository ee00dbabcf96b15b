#!/usr/bin/env bash
# Sustained load on loopback: wrk -t2 at 256 connections for 60 s against
# PAT introspection and against the emulated ERP API through the gateway
# (the real Envoy filter in the proxy-wasm runtime, then the API's own
# engine, session and store). Prints requests/s, p50, p99 and every error
# wrk saw (non-2xx answers, socket errors, timeouts).
#
#   benches/host/load.sh [seconds, default 60] [connections, default 256]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
conns=${2:-256}
root=$(cd ../.. && pwd)

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$root" && cargo build --release -p erpgate-cli --locked -q && scripts/build-filter >/dev/null)

data=$(mktemp -d)
cleanup() { kill "${stack_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

ERPGATE_ADMIN_TOKEN=load-admin-credential-0123456789abcdef RUST_LOG=warn "$root/target/release/erpgate" --demo --data "$data" up \
  --identity 127.0.0.1:18710 --identity-admin 127.0.0.1:18711 --gateway 127.0.0.1:18081 --admin 127.0.0.1:19911 \
  --filter "$root/deploy/envoy/erpgate_filter.wasm" >/dev/null 2>&1 &
stack_pid=$!
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:18710/health >/dev/null && curl -s -o /dev/null http://127.0.0.1:18081/health && break
  sleep 0.2
done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
edge_basic=$(printf '%s' erpgate.edge:demo-edge-secret | base64 -w0)
jwt=$(curl -sf -u demo.service:demo-service-secret -d grant_type=client_credentials -d scope=read \
  http://127.0.0.1:18710/id/connect/token | json access_token)
pat=$(curl -sf -H 'Authorization: Bearer load-admin-credential-0123456789abcdef' -H 'content-type: application/json' \
  -d '{"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1}' \
  http://127.0.0.1:18711/admin/reference-tokens | json token)

row() { # name wrk-output
  local out=$2
  local rps p50 p99 non2xx sock
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
  sock=$(awk '/Socket errors/ {sub(/^ *Socket errors: */, ""); print}' <<<"$out")
  printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}" "${sock:-none}"
}

echo "| $secs s, $conns connections, wrk -t2, loopback | requests/s | p50 | p99 | non-2xx | socket errors |"
echo "|---|---|---|---|---|---|"
row "introspection of a PAT (host)" "$(BODY="token=$pat" BASIC="$edge_basic" wrk -t2 -c"$conns" -d"${secs}s" --latency --timeout 5s -s post.lua http://127.0.0.1:18710/id/connect/introspect)"
row "GET Crm_Customers through the gateway (JWT, filter cache hit, API)" "$(TOKEN="$jwt" wrk -t2 -c"$conns" -d"${secs}s" --latency --timeout 5s -s get.lua http://127.0.0.1:18081/api/domain/odata/Crm_Customers)"
