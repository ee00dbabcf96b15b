#!/usr/bin/env bash
# A policy reload under load: `erpgate gateway` (the real filter, release
# build) in front of the demo host's emulated API, wrk -t2 at 64
# connections for 30 s with one JWT; at 10 s the plugin-configuration file
# gains a route. Prints how long the new route took to answer, every
# request wrk saw fail, and the filter's JWT cache counters around the
# reload (a reload that dropped the cache would show new misses). The route
# added is `health` (/health on the emulated API), absent at the start.
#
#   benches/host/reload.sh [seconds, default 30] [connections, default 64]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
conns=${2:-64}
root=$(cd ../.. && pwd)

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$root" && cargo build --release -p erpgate-cli --locked -q && scripts/build-filter >/dev/null)
bin="$root/target/release/erpgate"

data=$(mktemp -d)
cleanup() { kill "${host_pid:-}" "${gw_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

RUST_LOG=warn "$bin" --demo --data "$data/host" serve --listen 127.0.0.1:18720 --admin-listen 127.0.0.1:18721 \
  --public-url http://127.0.0.1:18720 >/dev/null 2>&1 &
host_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18720/health >/dev/null && break; sleep 0.2; done

config="$data/plugin-config.json"
write_config() { # extra-route: yes|no
  python3 - "$root/policies/erpnet.json" "$1" >"$config.tmp" <<'PY'
import json, sys
policy = json.load(open(sys.argv[1]))
policy["issuers"][0]["issuer"] = "http://127.0.0.1:18720/id"
# The edit adds the public `health` route back: until then /health has no
# route (403 from the gateway); after it, the upstream answers 200.
if sys.argv[2] == "no":
    policy["routes"] = [r for r in policy["routes"] if r["name"] != "health"]
print(json.dumps({"policy": policy, "clusters": {"identity": "identity"},
                  "client_credentials": {"client_id": "erpgate.edge", "client_secret": "demo-edge-secret"},
                  "decision_log": {"level": "off"}}))
PY
  mv "$config.tmp" "$config"
}
write_config no

RUST_LOG=info "$bin" --demo --data "$data/gw" gateway --filter "$root/deploy/envoy/erpgate_filter.wasm" \
  --plugin-config "$config" --upstream http://127.0.0.1:18720 --cluster identity=http://127.0.0.1:18720 \
  --listen 127.0.0.1:18082 --admin 127.0.0.1:19912 >"$data/gateway.log" 2>&1 &
gw_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18082/api/ && break; sleep 0.2; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
jwt=$(curl -sf -u demo.service:demo-service-secret -d grant_type=client_credentials -d scope=read \
  http://127.0.0.1:18720/id/connect/token | json access_token)
counter() { curl -s http://127.0.0.1:19912/stats/prometheus | awk -v n="$1" '$1==n {print $2}'; }

TOKEN="$jwt" wrk -t2 -c"$conns" -d"${secs}s" --latency --timeout 5s -s get.lua \
  http://127.0.0.1:18082/api/domain/odata/Crm_Customers >"$data/wrk.txt" &
wrk_pid=$!
sleep 10
before_route=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18082/health)
hits_before=$(counter erpgate_jwt_cache_hits); misses_before=$(counter erpgate_jwt_cache_misses)
start=$(date +%s%N)
write_config yes
until [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18082/health)" = 200 ]; do
  [ $(( $(date +%s%N) - start )) -lt 10000000000 ] || { echo "the new route was not live 10 s after the edit" >&2; exit 1; }
  sleep 0.01
done
live_ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$wrk_pid"
sleep 0.5
hits_after=$(counter erpgate_jwt_cache_hits); misses_after=$(counter erpgate_jwt_cache_misses)

out=$(cat "$data/wrk.txt")
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
total=$(awk '/requests in/ {print $1}' <<<"$out")
non2xx=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
sock=$(awk '/Socket errors/ {sub(/^ *Socket errors: */, ""); print}' <<<"$out")
echo "| $secs s, $conns connections, wrk -t2, route added at 10 s | requests | requests/s | non-2xx | socket errors | new route before → live after | JWT cache hits before → after | misses before → after |"
echo "|---|---|---|---|---|---|---|---|"
printf '| GET Crm_Customers through erpgate gateway (JWT) | %s | %s | %s | %s | %s → %s ms | %s → %s | %s → %s |\n' \
  "$total" "$rps" "${non2xx:-0}" "${sock:-none}" "$before_route" "$live_ms" "$hits_before" "$hits_after" "$misses_before" "$misses_after"
grep -c "plugin configuration reloaded" "$data/gateway.log" | sed 's/^/reloads logged: /'
