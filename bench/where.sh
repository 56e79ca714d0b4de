#!/usr/bin/env bash
# Where the time goes: per-request kernel and runtime counts of the Go
# proxies next to nginx's, on bench/run.sh's workloads and pinning. For each
# (workload, target) it runs wrk twice: once under `perf stat` (software
# events: task-clock, context switches, CPU migrations, page faults; cycles
# and instructions too where the machine exposes hardware counters), once
# under `strace -c -f`; each tool is attached to the server for the whole
# wrk run, so its totals divided by wrk's request count are per request.
# Then it records a `perf record -e cpu-clock -g` profile of each target on
# the small workload and sorts its samples into kernel and user-space
# categories. See bench/README.md ("Where the time goes"). Not a test.
#
#   bash bench/where.sh                     # SECONDS_EACH=5: about 5 minutes
#   SECONDS_EACH=3 WORKLOADS=small bash bench/where.sh
#
# Env: SECONDS_EACH (wrk -d of each run, default 5), WORKLOADS (default
# "small credits large"), EP_ENV (environment of envelope-proxy, e.g.
# "GOGC=400"), EP_EXTRA (YAML lines appended to envelope-proxy's config,
# e.g. "contract: {sample: 0}"). Needs perf (Debian: linux-perf), strace,
# wrk, nginx with the Lua module (as bench/run.sh; PEERS=0 leaves the peers
# out). Writes to bench/out/where/. Every server binds 127.0.0.1 only and is
# stopped by PID.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
OUT=$BENCH_DIR/out/where
SECONDS_EACH=${SECONDS_EACH:-5}
WORKLOADS=${WORKLOADS:-"small credits large"}
PEERS=${PEERS:-1}
EP_ENV=${EP_ENV:-}
EP_EXTRA=${EP_EXTRA:-}

die() { echo "where.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
if ! [[ $SECONDS_EACH =~ ^[0-9]+$ ]] || ((SECONDS_EACH < 1 || SECONDS_EACH > 60)); then die "SECONDS_EACH: want 1..60"; fi
for tool in go wrk curl perf strace taskset sha256sum ss; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (perf: apt-get install -y linux-perf)"
done
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
CJSON_DIR=
if ((PEERS)); then
	[[ -x $NGINX ]] || die "nginx is missing (PEERS=0 leaves the peers out)"
	for f in /usr/lib/*/lua/5.1/cjson.so /usr/lib/lua/5.1/cjson.so /usr/local/lib/lua/5.1/cjson.so; do
		[[ -f $f ]] && { CJSON_DIR=$(dirname "$f"); break; }
	done
	[[ -n $CJSON_DIR ]] || die "lua-cjson is missing (PEERS=0 leaves the peers out)"
fi
(($(nproc) >= 2)) || die "needs 2 CPUs: load on CPU 0, servers on CPU 1, as bench/run.sh pins them"
PIN_LOAD=(taskset -c 0)
PIN_SRV=(taskset -c 1)

rm -rf "$OUT" && mkdir -p "$OUT"
log "building into $OUT"
(cd "$ROOT" && go build -o "$OUT/envelope-proxy" . && go build -o "$OUT/backend" ./bench/backend && go build -o "$OUT/baseline" ./bench/baseline)

declare -A PID=()
cleanup() {
	local p
	for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=bench/free-port.sh
source "$BENCH_DIR/free-port.sh"
pick_port; BACKEND=$PORT
pick_port; TUNED=$PORT
pick_port; TUNEDHTTP=$PORT
pick_port; EP=$PORT
pick_port; EP_ADMIN=$PORT
pick_port; NGX=$PORT
pick_port; NGXLUA=$PORT

start() { # name ready-url command...
	local name=$1 url=$2 i
	shift 2
	"${PIN_SRV[@]}" "$@" >"$OUT/$name.log" 2>&1 &
	PID[$name]=$!
	for ((i = 0; i < 200; i++)); do
		kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited at start: $(tail -5 "$OUT/$name.log")"
		[[ $(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$url" || true) == 200 ]] && return 0
		sleep 0.05
	done
	die "$name not ready: $OUT/$name.log"
}

LEGACY_KEY=bench-legacy-key-0123456789
ENVELOPE_KEY=bench-envelope-key-0123456789
cat >"$OUT/envelope-proxy.yaml" <<EOF
# Written by bench/where.sh: bench/run.sh's envelope target.
listen: "127.0.0.1:$EP"
admin_listen: "127.0.0.1:$EP_ADMIN"
state_dir: state
upstream:
  url: "http://127.0.0.1:$BACKEND"
routing:
  clients:
    - {name: bench-legacy, keys_sha256: ["$(printf %s $LEGACY_KEY | sha256sum | cut -d' ' -f1)"], mode: legacy}
    - {name: bench-envelope, keys_sha256: ["$(printf %s $ENVELOPE_KEY | sha256sum | cut -d' ' -f1)"], mode: envelope}
log:
  level: warn
  access_log: false
$EP_EXTRA
EOF
"$OUT/envelope-proxy" validate -config "$OUT/envelope-proxy.yaml" >/dev/null || die "invalid config (EP_EXTRA?)"

render_peer() { # peer port
	local dir=$OUT/$1
	mkdir -p "$dir"
	[[ $1 == nginx-lua ]] && cp "$BENCH_DIR/peers/nginx-lua/envelope.lua" "$dir/"
	sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$2|g" -e "s|@BACKEND@|127.0.0.1:$BACKEND|g" -e "s|@CJSON_DIR@|$CJSON_DIR|g" \
		"$BENCH_DIR/peers/$1/nginx.conf.template" >"$dir/nginx.conf"
}

start backend "http://127.0.0.1:$BACKEND/small" "$OUT/backend" -listen "127.0.0.1:$BACKEND"
start tuned "http://127.0.0.1:$TUNED/small" "$OUT/baseline" -listen "127.0.0.1:$TUNED" -upstream "http://127.0.0.1:$BACKEND" -transport tuned
start tunedhttp "http://127.0.0.1:$TUNEDHTTP/small" "$OUT/baseline" -listen "127.0.0.1:$TUNEDHTTP" -upstream "http://127.0.0.1:$BACKEND" -transport tuned -legacy-http
# shellcheck disable=SC2086 # EP_ENV is a list of NAME=value words
start ep "http://127.0.0.1:$EP_ADMIN/readyz" env $EP_ENV "$OUT/envelope-proxy" -config "$OUT/envelope-proxy.yaml"
TARGETS=(baseline-tuned baseline-legacy-http legacy envelope)
declare -A SRV=([baseline-tuned]=tuned [baseline-legacy-http]=tunedhttp [legacy]=ep [envelope]=ep [nginx]=nginx [nginx-lua]=nginx-lua)
declare -A URL=([baseline-tuned]=http://127.0.0.1:$TUNED [baseline-legacy-http]=http://127.0.0.1:$TUNEDHTTP [legacy]=http://127.0.0.1:$EP [envelope]=http://127.0.0.1:$EP
	[nginx]=http://127.0.0.1:$NGX [nginx-lua]=http://127.0.0.1:$NGXLUA)
declare -A KEY=([baseline-tuned]=$LEGACY_KEY [baseline-legacy-http]=$LEGACY_KEY [legacy]=$LEGACY_KEY [envelope]=$ENVELOPE_KEY [nginx]=$LEGACY_KEY [nginx-lua]=$ENVELOPE_KEY)
if ((PEERS)); then
	render_peer nginx "$NGX"
	render_peer nginx-lua "$NGXLUA"
	start nginx "http://127.0.0.1:$NGX/small" "$NGINX" -p "$OUT/nginx/" -e "$OUT/nginx/error.log" -c "$OUT/nginx/nginx.conf"
	start nginx-lua "http://127.0.0.1:$NGXLUA/small" "$NGINX" -p "$OUT/nginx-lua/" -e "$OUT/nginx-lua/error.log" -c "$OUT/nginx-lua/nginx.conf"
	TARGETS+=(nginx nginx-lua)
fi

# The processes that serve: nginx's worker (its master idles), else the one started.
serving_pids() {
	local p=${PID[${SRV[$1]}]} w
	if [[ ${SRV[$1]} == nginx* ]]; then
		w=$(pgrep -P "$p" | head -1)
		[[ -n $w ]] && p=$w
	fi
	echo "$p"
}

# Hardware counters: a VM often exposes none; perf then reports them as
# <not supported>, and the tables leave them out.
EVENTS=task-clock,context-switches,cpu-migrations,page-faults
if perf stat -e cycles,instructions -x, -o "$OUT/hw-probe" -- true >/dev/null 2>&1 && ! grep -q 'not supported\|not counted' "$OUT/hw-probe"; then
	EVENTS+=,cycles,instructions
	HW=1
else
	HW=0
fi

wrk_run() { # target workload out -> wrk's request count
	"${PIN_LOAD[@]}" wrk -t1 -c32 -d"${SECONDS_EACH}s" -H "X-API-Key: ${KEY[$1]}" "${URL[$1]}/$2" >"$3" 2>&1 || die "wrk failed: $(cat "$3")"
	awk '/ requests in / {print $1; exit}' "$3"
}

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
declare -A STAT=() SYS=() USYS=()
for w in $WORKLOADS; do
	for t in "${TARGETS[@]}"; do
		log "$w $t"
		p=$(serving_pids "$t")
		f=$OUT/$w-$t
		perf stat -e "$EVENTS" -p "$p" -x, -o "$f.perf" &
		pp=$!
		sleep 0.3
		read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$p/stat")
		n=$(wrk_run "$t" "$w" "$f.wrk-perf")
		read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$p/stat")
		kill -INT "$pp"
		wait "$pp" || true
		USYS[$w|$t]=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN {printf "%.1f | %.1f", u / hz * 1e6 / n, s / hz * 1e6 / n}')
		STAT[$w|$t]=$(awk -F, -v n="$n" -v hw="$HW" '
			$3 ~ /^task-clock/ {tc = $1 * 1000 / n} $3 ~ /^context-switches/ {cs = $1 / n}
			$3 ~ /^cpu-migrations/ {mi = $1 / n} $3 ~ /^page-faults/ {pf = $1 / n}
			$3 ~ /^cycles/ {cy = $1 / n} $3 ~ /^instructions/ {in_ = $1 / n}
			END {
				printf "%.1f | %.3f | %.4f | %.3f", tc, cs, mi, pf
				if (hw) printf " | %.0f | %.0f | %.2f", cy, in_, (cy > 0 ? in_ / cy : 0)
			}' "$f.perf")
		strace -c -f -p "$p" -o "$f.strace" >/dev/null 2>&1 &
		sp=$!
		sleep 0.5
		n=$(wrk_run "$t" "$w" "$f.wrk-strace")
		kill -INT "$sp"
		wait "$sp" || true
		# strace -c: % time, seconds, usecs/call, calls, [errors], syscall.
		SYS[$w|$t]=$(awk -v n="$n" '
			$NF == "total" { total = $4 }
			$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 {
				calls = $4; errs = (NF == 6 ? $5 : 0)
				if (calls / n >= 0.05) {
					s = sprintf("%s %.2f", $NF, calls / n)
					if (errs / n >= 0.05) s = s sprintf(" (%.2f failed)", errs / n)
					list = list (list == "" ? "" : ", ") s
				}
			}
			END { printf "%.2f | %s", total / n, list }' "$f.strace")
	done
done

# CPU profiles on the small workload, each over one wrk run.
declare -A PROF=()
for t in "${TARGETS[@]}"; do
	log "profile small $t"
	p=$(serving_pids "$t")
	f=$OUT/profile-small-$t
	perf record -e cpu-clock -F 2999 -g -p "$p" -o "$f.data" >/dev/null 2>&1 &
	pp=$!
	sleep 0.3
	wrk_run "$t" small "$f.wrk" >/dev/null
	kill -INT "$pp"
	wait "$pp" || true
	perf report -i "$f.data" --no-children --sort dso,sym -g none --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' >"$f.top" || true
	PROF[$t]=$(awk -f "$BENCH_DIR/where-categories.awk" "$f.top" | sort -rn | head -8 | awk '{p = $1; $1 = ""; printf "%s%s%s", (NR > 1 ? "; " : ""), p, $0}')
done

{
	echo "### Where the time goes: per-request counts"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- wrk -t1 -c32 -d${SECONDS_EACH}s on CPU 0; backend and server on CPU 1; each tool attached for a whole wrk run"
	((HW)) || echo "- hardware counters (cycles, instructions): not supported on this machine (perf stat reports them <not supported>); software events only"
	[[ -n $EP_ENV ]] && echo "- envelope-proxy environment: $EP_ENV"
	[[ -n $EP_EXTRA ]] && echo "- envelope-proxy config adds: $EP_EXTRA"
	echo
	echo "perf stat, per request (for nginx its worker), with the user and system CPU time of the same run (/proc/<pid>/stat):"
	echo
	if ((HW)); then
		echo "| workload | target | task-clock µs | context switches | CPU migrations | page faults | cycles | instructions | IPC | user µs | system µs |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	else
		echo "| workload | target | task-clock µs | context switches | CPU migrations | page faults | user µs | system µs |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|"
	fi
	for w in $WORKLOADS; do for t in "${TARGETS[@]}"; do echo "| $w | $t | ${STAT[$w|$t]} | ${USYS[$w|$t]} |"; done; done
	echo
	echo "strace -c -f, system calls per request (those at 0.05 or more a request; failed: returned an error, EAGAIN for reads):"
	echo
	echo "| workload | target | syscalls | by call |"
	echo "|---|---|---:|---|"
	for w in $WORKLOADS; do for t in "${TARGETS[@]}"; do echo "| $w | $t | ${SYS[$w|$t]} |"; done; done
	echo
	echo "CPU profile on small (perf record -e cpu-clock), share of the server's samples by category:"
	echo
	echo "| target | categories |"
	echo "|---|---|"
	for t in "${TARGETS[@]}"; do echo "| $t | ${PROF[$t]} |"; done
} | tee "$OUT/results.md"
echo "(perf and strace outputs in $OUT)" >&2
