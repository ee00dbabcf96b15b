#!/usr/bin/env bash
# PAT introspection throughput of the host on SQLite, on PostgreSQL, and as
# two replicas on one PostgreSQL database (release build, loopback), with
# node-oidc-provider's introspection as the peer in the same run. Every row
# drives the same load: two wrk processes (-t1, half the connections each),
# aimed at the one server or one at each replica; the row sums them.
#
#   benches/host/replicas.sh [seconds, default 30] [connections, default 256]
#
# Starts its own PostgreSQL (scripts/postgres, port 55440) and stops it.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
conns=${2:-256}
half=$((conns / 2))
root=$(cd ../.. && pwd)

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$root" && cargo build --release -p erpgate-cli --locked -q)

export ERPGATE_PG_PORT=55440
data=$(mktemp -d)
pids=()
stop_hosts() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() { stop_hosts; "$root/scripts/postgres" stop; rm -rf "$data"; }
trap cleanup EXIT
"$root/scripts/postgres" stop
server=$("$root/scripts/postgres" start)

public=http://127.0.0.1:18720
serve() { # port [extra args…]
  local port=$1
  shift
  ERPGATE_ADMIN_TOKEN=bench-admin-credential-0123456789abcdef RUST_LOG=warn "$root/target/release/erpgate" --demo "$@" serve \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 100))" --public-url "$public" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && return
    sleep 0.2
  done
  echo "host on $port did not start" >&2
  exit 1
}

json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
edge_basic=$(printf '%s' erpgate.edge:demo-edge-secret | base64 -w0)
mint() { # port
  curl -sf -H 'Authorization: Bearer bench-admin-credential-0123456789abcdef' -H 'content-type: application/json' \
    -d '{"client_id":"demo.reports","kind":"pat","user":"alice","scope":"read","expires_in_days":1}' \
    "http://127.0.0.1:$(($1 + 100))/admin/reference-tokens" | json token
}

drive() { # name url-a url-b basic body
  local out_a out_b
  out_a=$(mktemp)
  out_b=$(mktemp)
  BODY="$5" BASIC="$4" wrk -t1 -c"$half" -d"${secs}s" --latency --timeout 5s -s post.lua "$2" >"$out_a" &
  local wa=$!
  BODY="$5" BASIC="$4" wrk -t1 -c"$half" -d"${secs}s" --latency --timeout 5s -s post.lua "$3" >"$out_b" &
  wait $wa $!
  python3 - "$1" "$out_a" "$out_b" <<'PY'
import re, sys
name, files = sys.argv[1], sys.argv[2:]
rps = p99 = 0.0
errors = 0
def ms(v):
    n = float(re.match(r"[\d.]+", v).group())
    return n * {"us": 0.001, "ms": 1, "s": 1000}[re.search(r"[a-z]+$", v).group()]
for f in files:
    text = open(f).read()
    rps += float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = max(p99, ms(re.search(r"\s99%\s+(\S+)", text).group(1)))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors += int(m.group(1)) if m else 0
    s = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors += sum(int(x) for x in s.groups()) if s else 0
print(f"| {name} | {rps:,.0f} | {p99:.2f} ms | {errors} |")
PY
  rm -f "$out_a" "$out_b"
}

load() { # name port-a port-b: a PAT minted at A, introspected at A and B
  local pat
  pat=$(mint "$2")
  # The token must be active at both before the clock starts.
  for port in "$2" "$3"; do
    curl -sf -u erpgate.edge:demo-edge-secret -d "token=$pat" "http://127.0.0.1:$port/id/connect/introspect" | grep -q '"active":true'
  done
  drive "$1" "http://127.0.0.1:$2/id/connect/introspect" "http://127.0.0.1:$3/id/connect/introspect" "$edge_basic" "token=$pat"
}

echo "| $secs s, $conns connections (2 × wrk -t1), loopback | requests/s | p99 (worse of the two) | errors |"
echo "|---|---|---|---|"
serve 18720 --data "$data/sqlite"
load "SQLite, one host" 18720 18720
stop_hosts

# The peer, in the same run and under the same load: node-oidc-provider 9.x
# (one Node process, its in-memory adapter), introspecting its own token.
[ -d node_modules/oidc-provider ] || npm install --no-audit --no-fund --silent
PORT=18800 node oidc-provider.mjs >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -sf http://127.0.0.1:18800/.well-known/openid-configuration >/dev/null && break
  sleep 0.2
done
node_basic=$(printf '%s' bench:bench-secret | base64 -w0)
node_token=$(curl -sf -H "Authorization: Basic $node_basic" -d grant_type=client_credentials -d scope=read http://127.0.0.1:18800/token | json access_token)
drive "node-oidc-provider 9.x, one process, in memory (peer)" http://127.0.0.1:18800/token/introspection http://127.0.0.1:18800/token/introspection "$node_basic" "token=$node_token"
stop_hosts

base=${server%/*}
psql -q "$server" -c "CREATE DATABASE bench_one" -c "CREATE DATABASE bench_two"
serve 18720 --database "$base/bench_one"
load "PostgreSQL, one host" 18720 18720
stop_hosts

serve 18720 --database "$base/bench_two"
serve 18721 --database "$base/bench_two"
load "PostgreSQL, two replicas" 18720 18721
stop_hosts
