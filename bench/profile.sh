#!/usr/bin/env bash
# Writes default.pgo, the CPU profile `go build` uses for profile-guided
# optimisation of envelope-proxy (see bench/README.md). Not a test: CI does
# not run it.
#
#   bench/profile.sh                 # SECONDS_EACH=8: about a minute
#
# It builds envelope-proxy without a profile and the bench backend, runs
# them as bench/run.sh does (127.0.0.1 only, servers pinned to CPU 1 and wrk
# to CPU 0 where there are two), and profiles the proxy under wrk for each of
# bench/run.sh's workloads for each client mode, with the default config's
# access log on. The profiles are merged into $ROOT/default.pgo. Every
# process it starts is stopped by PID.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
OUT=$BENCH_DIR/out/profile
SECONDS_EACH=${SECONDS_EACH:-8}
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] && ((SECONDS_EACH >= 1 && SECONDS_EACH <= 120)) || { echo "SECONDS_EACH: want 1..120" >&2; exit 1; }
for tool in go wrk curl sha256sum ss; do
	command -v "$tool" >/dev/null 2>&1 || { echo "profile.sh: $tool is missing (bench/run.sh installs wrk)" >&2; exit 1; }
done
PIN_LOAD=() PIN_SRV=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null 2>&1; then
	PIN_LOAD=(taskset -c 0) PIN_SRV=(taskset -c 1)
fi

rm -rf "$OUT" && mkdir -p "$OUT"
(cd "$ROOT" && go build -pgo=off -o "$OUT/envelope-proxy" . && go build -o "$OUT/backend" ./bench/backend)

PIDS=()
# shellcheck disable=SC2154 # p is the loop's own variable, assigned when the trap runs
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT

# Fixed loopback ports below the ephemeral range, checked free.
BACKEND=127.0.0.1:18700 PROXY=127.0.0.1:18701 ADMIN=127.0.0.1:18702
for a in $BACKEND $PROXY $ADMIN; do
	! ss -Htan "( sport = :${a#*:} )" | grep -q . || { echo "profile.sh: port ${a#*:} in use" >&2; exit 1; }
done
LEGACY_KEY=bench-legacy-key-0123456789 ENVELOPE_KEY=bench-envelope-key-0123456789
cat >"$OUT/config.yaml" <<EOF
listen: "$PROXY"
admin_listen: "$ADMIN"
state_dir: state
upstream: {url: "http://$BACKEND"}
routing:
  clients:
    - {name: bench-legacy, keys_sha256: ["$(printf %s $LEGACY_KEY | sha256sum | cut -d' ' -f1)"], mode: legacy}
    - {name: bench-envelope, keys_sha256: ["$(printf %s $ENVELOPE_KEY | sha256sum | cut -d' ' -f1)"], mode: envelope}
log: {level: warn, access_log: true}
EOF

wait_ready() {
	for _ in $(seq 200); do
		[[ $(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$1" || true) == 200 ]] && return 0
		sleep 0.05
	done
	echo "profile.sh: $1 not ready; logs in $OUT" >&2
	exit 1
}
"${PIN_SRV[@]}" "$OUT/backend" -listen "$BACKEND" >"$OUT/backend.log" 2>&1 &
PIDS+=($!)
wait_ready "http://$BACKEND/small"
"${PIN_SRV[@]}" "$OUT/envelope-proxy" -config "$OUT/config.yaml" >"$OUT/envelope-proxy.log" 2>&1 &
PIDS+=($!)
wait_ready "http://$ADMIN/readyz"

for path in small credits large; do
	for key in $LEGACY_KEY $ENVELOPE_KEY; do
		name=$path-${key%%-key-*}
		echo "== profiling $name for ${SECONDS_EACH}s" >&2
		"${PIN_LOAD[@]}" wrk -t1 -c32 -d$((SECONDS_EACH + 2))s -H "X-API-Key: $key" "http://$PROXY/$path" >"$OUT/$name.wrk" &
		load=$!
		PIDS+=("$load")
		sleep 1
		curl -sf -o "$OUT/$name.pprof" "http://$ADMIN/debug/pprof/profile?seconds=$SECONDS_EACH"
		wait "$load"
	done
done
go tool pprof -proto "$OUT"/*.pprof >"$ROOT/default.pgo" 2>/dev/null
rm -f "$OUT/envelope-proxy.log" # the access log: hundreds of MB, of no further use
echo "wrote $ROOT/default.pgo ($(wc -c <"$ROOT/default.pgo") bytes) from $(ls "$OUT"/*.pprof | wc -l) profiles" >&2
