#!/usr/bin/env bash
# Load benchmark of envelope-proxy against a plain httputil.ReverseProxy
# (bench/baseline, on http.DefaultTransport), the same proxy with a tuned
# transport, and the peers a platform team would pick instead: nginx
# proxy_pass and nginx + Lua doing the same envelope rewrite (bench/peers/),
# all measured in the same interleaved rounds.
# See bench/README.md. Not a test: CI does not run it.
#
#   bash bench/run.sh                  # defaults: DURATION=5s ROUNDS=3, about 7 minutes
#   PEERS=0 bash bench/run.sh          # without the nginx peers
#   bash bench/postgres.sh             # also envelope-pg: evidence in a throwaway PostgreSQL
#   COMPARE_REF=main~3 bash bench/run.sh   # also envelope-proxy as it was at main~3
#
# Env:
#   DURATION            wrk -d of each measured run (default 5s)
#   WARMUP              an unmeasured wrk run of the same load before each
#                       measured one (default 1s; 0 skips it)
#   ROUNDS              interleaved rounds (default 3)
#   CONNECTIONS         wrk -c (default 32)
#   ACCESS_LOG_TARGET   1: also measure envelope-log, the envelope target with
#                       the access log on, the default config; 0: skip it
#   NOISE_TARGET        1: also measure the baseline a second time in every
#                       round, whose ratio to the baseline is this run's
#                       noise; 0: skip it
#   LEGACY_HTTP_TARGET  1: also measure baseline-legacy-http, the tuned proxy
#                       with the HTTP behaviour envelope-proxy adds for a
#                       legacy client (X-Forwarded-*, the upstream timeout,
#                       Vary), with every target's ratio to it in a "vs
#                       legacy-http" column; 0: skip it
#   HUGE_BYTES          size of the streamed wrap (default 5 GiB; 0 skips it)
#   CONNS_CLIENTS       keep-alive clients of the connections run (default
#                       1000; 0 skips it)
#   PEERS               1: also measure nginx and nginx-lua, installing
#                       Debian's nginx, libnginx-mod-http-lua and lua-cjson
#                       when they are missing; 0: skip them
#   STATE_URL           a postgres:// URL: also measure envelope-pg, the
#                       envelope target with the dashboard's evidence in that
#                       database (state_url) instead of the SQLite file in
#                       state_dir, with its ratio to envelope in a "vs
#                       envelope" column; empty, the default: skip it. Give it
#                       a throwaway database: the run adds its evidence to
#                       whatever is there. bench/postgres.sh starts one and
#                       sets STATE_URL.
#   WORKLOADS           which of small, credits and large to measure (default
#                       all three)
#   COMPARE_REF         a git revision of this repository: also measure
#                       envelope-proxy built from it, as legacy-ref and
#                       envelope-ref, with every target's ratio to them in "vs
#                       legacy@ref" and "vs envelope@ref" columns, so that a
#                       change's cost is read in one run against its noise
#                       band; empty, the default: skip them
#
# Every server binds 127.0.0.1 only. Everything is written to bench/out/.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
OUT=$BENCH_DIR/out

DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
ACCESS_LOG_TARGET=${ACCESS_LOG_TARGET:-1}
NOISE_TARGET=${NOISE_TARGET:-1}
LEGACY_HTTP_TARGET=${LEGACY_HTTP_TARGET:-1}
HUGE_BYTES=${HUGE_BYTES:-5368709120}
CONNS_CLIENTS=${CONNS_CLIENTS:-1000}
HUGE_MAX_TIME=${HUGE_MAX_TIME:-240} # seconds, per 5 GiB download
PEERS=${PEERS:-1}
STATE_URL=${STATE_URL:-}
COMPARE_REF=${COMPARE_REF:-}
read -r -a WORKLOADS <<<"${WORKLOADS:-small credits large}"

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

[[ $DURATION =~ ^[0-9]+[smh]?$ ]] || die "DURATION=$DURATION: want a wrk duration like 5s"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || die "WARMUP=$WARMUP: want a wrk duration like 1s, or 0"
WARMING=1
[[ $WARMUP =~ ^0+[smh]?$ ]] && WARMING=0
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 50)) || die "ROUNDS=$ROUNDS: want 1..50"
[[ $CONNECTIONS =~ ^[0-9]+$ ]] && ((CONNECTIONS >= 1 && CONNECTIONS <= 1024)) || die "CONNECTIONS=$CONNECTIONS: want 1..1024"
[[ $HUGE_BYTES =~ ^[0-9]+$ ]] || die "HUGE_BYTES=$HUGE_BYTES: want a byte count"
[[ $CONNS_CLIENTS =~ ^[0-9]+$ ]] && ((CONNS_CLIENTS <= 10000)) || die "CONNS_CLIENTS=$CONNS_CLIENTS: want 0..10000"
[[ $ACCESS_LOG_TARGET == 0 || $ACCESS_LOG_TARGET == 1 ]] || die "ACCESS_LOG_TARGET: 0 or 1"
[[ $NOISE_TARGET == 0 || $NOISE_TARGET == 1 ]] || die "NOISE_TARGET: 0 or 1"
[[ $LEGACY_HTTP_TARGET == 0 || $LEGACY_HTTP_TARGET == 1 ]] || die "LEGACY_HTTP_TARGET: 0 or 1"
[[ $PEERS == 0 || $PEERS == 1 ]] || die "PEERS: 0 or 1"
for w in "${WORKLOADS[@]}"; do
	[[ $w == small || $w == credits || $w == large ]] || die "WORKLOADS: want some of small, credits, large"
done
((${#WORKLOADS[@]})) || die "WORKLOADS: want some of small, credits, large"
[[ $HUGE_MAX_TIME =~ ^[0-9]+$ ]] && ((HUGE_MAX_TIME >= 1)) || die "HUGE_MAX_TIME=$HUGE_MAX_TIME: want seconds"
# The URL goes into a single-quoted YAML string: no quote, space or control character.
STATE_URL_RE="^postgres(ql)?://[^'\"[:space:][:cntrl:]]+$"
[[ -z $STATE_URL || $STATE_URL =~ $STATE_URL_RE ]] || die "STATE_URL: want a postgres:// URL (without quotes or spaces), or nothing"
PG=0
[[ -n $STATE_URL ]] && PG=1
CMP=0
COMPARE_COMMIT=
if [[ -n $COMPARE_REF ]]; then
	COMPARE_COMMIT=$(git -C "$ROOT" rev-parse --verify --quiet "$COMPARE_REF^{commit}") ||
		die "COMPARE_REF=$COMPARE_REF: not a commit of $ROOT"
	CMP=1
fi

START_TIME=$SECONDS

# --- tools -----------------------------------------------------------------
# Debian packages are installed with apt-get when missing and the script runs
# as root (bench/apt-install.sh).
# shellcheck source=bench/apt-install.sh
source "$BENCH_DIR/apt-install.sh"
# Removes policy-rc.d if the script is stopped while installing.
trap apt_install_cleanup EXIT

if ! command -v wrk >/dev/null 2>&1; then
	apt_install wrk || true
	command -v wrk >/dev/null 2>&1 || die "wrk is missing: apt-get install -y wrk"
fi
for tool in go curl awk sha256sum cmp ss; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done

# The peers: nginx, its Lua module (with the NDK module it needs) and
# lua-cjson for Lua 5.1, which the module's LuaJIT loads.
NGINX_MODULES=(/usr/lib/nginx/modules/ndk_http_module.so /usr/lib/nginx/modules/ngx_http_lua_module.so)
cjson_dir() { # the directory holding cjson.so for Lua 5.1, or nothing
	local f
	for f in /usr/lib/*/lua/5.1/cjson.so /usr/lib/lua/5.1/cjson.so /usr/local/lib/lua/5.1/cjson.so; do
		[[ -f $f ]] && { dirname "$f"; return 0; }
	done
	return 0
}
peers_missing() { # -> the Debian packages of the peers that are missing
	local m
	[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || echo nginx
	for m in "${NGINX_MODULES[@]}"; do
		[[ -f $m ]] || { echo libnginx-mod-http-lua; break; }
	done
	[[ -n $(cjson_dir) ]] || echo lua-cjson
}
if ((PEERS)); then
	mapfile -t missing < <(peers_missing)
	if ((${#missing[@]})); then
		apt_install "${missing[@]}" || log "apt-get could not install ${missing[*]}"
	fi
	NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
	[[ -x $NGINX ]] || die "nginx is missing (PEERS=0 leaves the peers out): apt-get install -y nginx"
	for m in "${NGINX_MODULES[@]}"; do
		[[ -f $m ]] || die "$m is missing, which the nginx-lua peer loads (PEERS=0 leaves the peers out): apt-get install -y libnginx-mod-http-lua"
	done
	CJSON_DIR=$(cjson_dir)
	[[ -n $CJSON_DIR ]] || die "lua-cjson's cjson.so for Lua 5.1 is missing (looked in /usr/lib/*/lua/5.1, /usr/lib/lua/5.1, /usr/local/lib/lua/5.1; PEERS=0 leaves the peers out): apt-get install -y lua-cjson"
	for f in "$BENCH_DIR/peers/nginx/nginx.conf.template" "$BENCH_DIR/peers/nginx-lua/nginx.conf.template" "$BENCH_DIR/peers/nginx-lua/envelope.lua"; do
		[[ -f $f ]] || die "$f is missing"
	done
fi

# --- CPU pinning ---------------------------------------------------------
# The load generator on CPU 0, the backend and the proxies on CPU 1, so wrk
# never steals the servers' CPU (and the servers share one core, as a small
# container would).
NPROC=$(nproc)
PIN_LOAD=()
PIN_SRV=()
if ((NPROC >= 2)) && command -v taskset >/dev/null 2>&1; then
	PIN_LOAD=(taskset -c 0)
	PIN_SRV=(taskset -c 1)
	PINNING="wrk and curl on CPU 0; backend and proxies on CPU 1 (taskset)"
else
	PINNING="no CPU pinning (nproc=$NPROC$(command -v taskset >/dev/null 2>&1 || echo ', no taskset')): load generator and servers share the CPUs"
fi

# --- build ---------------------------------------------------------------
mkdir -p "$OUT"
rm -rf "$OUT/wrk" "$OUT/verify"
mkdir -p "$OUT/wrk" "$OUT/verify"
log "building into $OUT"
(cd "$ROOT" && go build -o "$OUT/envelope-proxy" . && go build -o "$OUT/backend" ./bench/backend && go build -o "$OUT/baseline" ./bench/baseline)
if ((CMP)); then
	# The committed tree only, with its own default.pgo: what that commit's
	# users would have built, whatever the working tree holds.
	log "building envelope-proxy at $COMPARE_REF (${COMPARE_COMMIT:0:12})"
	rm -rf "$OUT/compare-src"
	mkdir -p "$OUT/compare-src"
	git -C "$ROOT" archive "$COMPARE_COMMIT" | tar -x -C "$OUT/compare-src"
	(cd "$OUT/compare-src" && go build -o "$OUT/envelope-proxy-ref" .)
fi

# --- processes -----------------------------------------------------------
# LIVE maps the PID of every server this script started (and has not
# stopped yet) to its name; the EXIT trap kills exactly those.
declare -A LIVE=()
declare -A PID=()
cleanup() {
	local p
	apt_install_cleanup
	for p in "${!LIVE[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${!LIVE[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free loopback ports, distinct from each other, below the kernel's
# ephemeral range (bench/free-port.sh).
# shellcheck source=bench/free-port.sh
source "$BENCH_DIR/free-port.sh"
pick_port; BACKEND_PORT=$PORT
pick_port; BASE_PORT=$PORT
pick_port; TUNED_PORT=$PORT
pick_port; TUNEDHTTP_PORT=$PORT
pick_port; EP_PORT=$PORT
pick_port; EP_ADMIN=$PORT
pick_port; EPLOG_PORT=$PORT
pick_port; EPLOG_ADMIN=$PORT
pick_port; NGINX_PORT=$PORT
pick_port; NGINXLUA_PORT=$PORT
pick_port; EPPG_PORT=$PORT
pick_port; EPPG_ADMIN=$PORT
pick_port; EPREF_PORT=$PORT
pick_port; EPREF_ADMIN=$PORT

# The command line of each server.
declare -A CMD=(
	[backend]="$OUT/backend -listen 127.0.0.1:$BACKEND_PORT"
	[baseline]="$OUT/baseline -listen 127.0.0.1:$BASE_PORT -upstream http://127.0.0.1:$BACKEND_PORT -transport default"
	[tuned]="$OUT/baseline -listen 127.0.0.1:$TUNED_PORT -upstream http://127.0.0.1:$BACKEND_PORT -transport tuned"
	[tunedhttp]="$OUT/baseline -listen 127.0.0.1:$TUNEDHTTP_PORT -upstream http://127.0.0.1:$BACKEND_PORT -transport tuned -legacy-http"
	[ep]="$OUT/envelope-proxy -config $OUT/envelope-proxy.yaml"
	[eplog]="$OUT/envelope-proxy -config $OUT/envelope-proxy-accesslog.yaml"
	[eppg]="$OUT/envelope-proxy -config $OUT/envelope-proxy-pg.yaml"
	[epref]="$OUT/envelope-proxy-ref -config $OUT/envelope-proxy-ref.yaml"
)
declare -A READY_URL=(
	[backend]="http://127.0.0.1:$BACKEND_PORT/small"
	[baseline]="http://127.0.0.1:$BASE_PORT/small"
	[tuned]="http://127.0.0.1:$TUNED_PORT/small"
	[tunedhttp]="http://127.0.0.1:$TUNEDHTTP_PORT/small"
	[ep]="http://127.0.0.1:$EP_ADMIN/readyz"
	[eplog]="http://127.0.0.1:$EPLOG_ADMIN/readyz"
	[eppg]="http://127.0.0.1:$EPPG_ADMIN/readyz"
	[epref]="http://127.0.0.1:$EPREF_ADMIN/readyz"
)

# The peers run from their own directories under bench/out/ (config, pid
# file, error log, temp paths; nginx-lua's also holds envelope.lua), with
# daemon off so that the PID the script starts is nginx's master, and one
# worker process.
render_peer() { # peer port -> writes $OUT/peer/nginx.conf from bench/peers/peer/nginx.conf.template
	local peer=$1 dir=$OUT/$1
	rm -rf "$dir"
	mkdir -p "$dir"
	[[ $peer == nginx-lua ]] && cp "$BENCH_DIR/peers/nginx-lua/envelope.lua" "$dir/envelope.lua"
	sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$2|g" -e "s|@BACKEND@|127.0.0.1:$BACKEND_PORT|g" -e "s|@CJSON_DIR@|${CJSON_DIR:-}|g" \
		"$BENCH_DIR/peers/$peer/nginx.conf.template" >"$dir/nginx.conf"
	! grep -q '@[A-Z_]*@' "$dir/nginx.conf" || die "$dir/nginx.conf: a placeholder is left: $(grep -o '@[A-Z_]*@' "$dir/nginx.conf" | head -1)"
	# The master parses the config as it starts: test it first for a clear error.
	"$NGINX" -t -q -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/test.log" 2>&1 ||
		die "nginx -t refuses $dir/nginx.conf: $(cat "$dir/test.log")"
}
if ((PEERS)); then
	render_peer nginx "$NGINX_PORT"
	render_peer nginx-lua "$NGINXLUA_PORT"
	CMD[nginx]="$NGINX -p $OUT/nginx/ -e $OUT/nginx/error.log -c $OUT/nginx/nginx.conf"
	CMD[nginx-lua]="$NGINX -p $OUT/nginx-lua/ -e $OUT/nginx-lua/error.log -c $OUT/nginx-lua/nginx.conf"
	READY_URL[nginx]="http://127.0.0.1:$NGINX_PORT/small"
	READY_URL[nginx-lua]="http://127.0.0.1:$NGINXLUA_PORT/small"
fi

start_server() {
	local name=$1 i p
	# shellcheck disable=SC2086 # CMD holds a word-split command line (paths without spaces)
	"${PIN_SRV[@]}" ${CMD[$name]} >"$OUT/$name.log" 2>&1 &
	p=$!
	LIVE[$p]=$name
	PID[$name]=$p
	for ((i = 0; i < 200; i++)); do
		if ! kill -0 "$p" 2>/dev/null; then
			unset 'LIVE[$p]'
			die "$name exited at start; its log ($OUT/$name.log):
$(tail -20 "$OUT/$name.log")"
		fi
		if [[ $(curl -s -o /dev/null --max-time 1 -w '%{http_code}' "${READY_URL[$name]}" || true) == 200 ]]; then
			return 0
		fi
		sleep 0.05
	done
	die "$name not ready after 10 s (${READY_URL[$name]}); log: $OUT/$name.log"
}

stop_server() {
	local name=$1 p=${PID[$1]:-}
	[[ -n $p ]] || return 0
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset 'LIVE[$p]'
	unset 'PID[$name]'
}

restart_server() { stop_server "$1"; start_server "$1"; }

# The processes of a server: the one the script started and, for nginx, the
# worker its master forked (found by parent PID).
srv_pids() {
	local p=${PID[$1]}
	echo "$p"
	if [[ $1 == nginx || $1 == nginx-lua ]]; then pgrep -P "$p" || true; fi
}

# Peak resident set (VmHWM) of a server, in KiB. For nginx it is the
# worker's (the master is idle and shares most of its pages with it).
peak_kib() {
	local p=${PID[$1]} w
	if [[ $1 == nginx || $1 == nginx-lua ]]; then
		w=$(pgrep -P "$p" | head -1)
		[[ -n $w ]] && p=$w
	fi
	awk '/^VmHWM:/ {print $2}' "/proc/$p/status"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; } # KiB -> MiB, one decimal

# CPU time a server has used so far (user + system, all threads), in clock
# ticks of CLK_TCK per second. For nginx it is the sum of the master and the
# worker (the master's share is nil under load, but nothing is left out).
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ticks() {
	local p t=0 c
	for p in $(srv_pids "$1"); do
		c=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || c=0
		t=$((t + ${c:-0}))
	done
	echo "$t"
}

# --- configs -------------------------------------------------------------
LEGACY_KEY=bench-legacy-key-0123456789
ENVELOPE_KEY=bench-envelope-key-0123456789
LEGACY_SHA=$(printf %s "$LEGACY_KEY" | sha256sum | cut -d' ' -f1)
ENVELOPE_SHA=$(printf %s "$ENVELOPE_KEY" | sha256sum | cut -d' ' -f1)

write_config() { # file port admin_port access_log state (a directory under bench/out/, or a postgres:// URL) [binary that validates it]
	local state
	if [[ $5 == postgres://* || $5 == postgresql://* ]]; then
		state="# The dashboard's evidence in PostgreSQL (STATE_URL) instead of SQLite.
state_dir: \"\"
state_url: '$5'"
	else
		rm -rf "${OUT:?}/${5:?}"
		state="# The dashboard's evidence, recorded as in production (the default).
state_dir: $5"
	fi
	cat >"$1" <<EOF
# Written by bench/run.sh.
listen: "127.0.0.1:$2"
admin_listen: "127.0.0.1:$3"
$state
upstream:
  url: "http://127.0.0.1:$BACKEND_PORT"
routing:
  clients:
    - {name: bench-legacy, keys_sha256: ["$LEGACY_SHA"], mode: legacy}
    - {name: bench-envelope, keys_sha256: ["$ENVELOPE_SHA"], mode: envelope}
log:
  level: warn
  access_log: $4
EOF
	"${6:-$OUT/envelope-proxy}" validate -config "$1" >/dev/null || die "invalid config $1"
}
write_config "$OUT/envelope-proxy.yaml" "$EP_PORT" "$EP_ADMIN" false state-ep
write_config "$OUT/envelope-proxy-accesslog.yaml" "$EPLOG_PORT" "$EPLOG_ADMIN" true state-eplog
rm -f "$OUT/envelope-proxy-pg.yaml"
# The same config as envelope's but for where the evidence is kept.
((PG)) && write_config "$OUT/envelope-proxy-pg.yaml" "$EPPG_PORT" "$EPPG_ADMIN" false "$STATE_URL"
rm -f "$OUT/envelope-proxy-ref.yaml"
# The same config as envelope's, for the binary built at COMPARE_REF.
((CMP)) && write_config "$OUT/envelope-proxy-ref.yaml" "$EPREF_PORT" "$EPREF_ADMIN" false state-epref "$OUT/envelope-proxy-ref"

# --- targets and workloads -----------------------------------------------
declare -A WPATH=([small]=/small [credits]=/credits [large]=/large)

# baseline-again is the baseline measured a second time in every round, at
# its own place in the rotating order: the same binary, so its ratio to the
# baseline would be 1.00 on a quiet machine, and its spread over the rounds
# is how far apart two identical targets land in this run.
TARGETS=(baseline)
((NOISE_TARGET)) && TARGETS+=(baseline-again)
TARGETS+=(baseline-tuned)
((LEGACY_HTTP_TARGET)) && TARGETS+=(baseline-legacy-http)
TARGETS+=(legacy envelope)
((ACCESS_LOG_TARGET)) && TARGETS+=(envelope-log)
((PG)) && TARGETS+=(envelope-pg)
((CMP)) && TARGETS+=(legacy-ref envelope-ref)
((PEERS)) && TARGETS+=(nginx nginx-lua)
declare -A TSERVER=([baseline]=baseline [baseline-again]=baseline [baseline-tuned]=tuned [baseline-legacy-http]=tunedhttp [legacy]=ep [envelope]=ep [envelope-log]=eplog [envelope-pg]=eppg [legacy-ref]=epref [envelope-ref]=epref [nginx]=nginx [nginx-lua]=nginx-lua)
declare -A TURL=(
	[baseline]="http://127.0.0.1:$BASE_PORT"
	[baseline-again]="http://127.0.0.1:$BASE_PORT"
	[baseline-tuned]="http://127.0.0.1:$TUNED_PORT"
	[baseline-legacy-http]="http://127.0.0.1:$TUNEDHTTP_PORT"
	[legacy]="http://127.0.0.1:$EP_PORT"
	[envelope]="http://127.0.0.1:$EP_PORT"
	[envelope-log]="http://127.0.0.1:$EPLOG_PORT"
	[envelope-pg]="http://127.0.0.1:$EPPG_PORT"
	[legacy-ref]="http://127.0.0.1:$EPREF_PORT"
	[envelope-ref]="http://127.0.0.1:$EPREF_PORT"
	[nginx]="http://127.0.0.1:$NGINX_PORT"
	[nginx-lua]="http://127.0.0.1:$NGINXLUA_PORT"
)
# The baseline and the peers get a key header too (they forward it like any
# header), so that every target parses and forwards requests of the same
# shape and the ratios measure the proxy, not a shorter request. nginx-lua
# is the rewriting peer: it gets the envelope key, as the envelope target.
declare -A TKEY=([baseline]=$LEGACY_KEY [baseline-again]=$LEGACY_KEY [baseline-tuned]=$LEGACY_KEY [baseline-legacy-http]=$LEGACY_KEY [legacy]=$LEGACY_KEY [envelope]=$ENVELOPE_KEY [envelope-log]=$ENVELOPE_KEY [envelope-pg]=$ENVELOPE_KEY [legacy-ref]=$LEGACY_KEY [envelope-ref]=$ENVELOPE_KEY [nginx]=$LEGACY_KEY [nginx-lua]=$ENVELOPE_KEY)
declare -A TMODE=([baseline]=legacy [baseline-again]=legacy [baseline-tuned]=legacy [baseline-legacy-http]=legacy [legacy]=legacy [envelope]=envelope [envelope-log]=envelope [envelope-pg]=envelope [legacy-ref]=legacy [envelope-ref]=envelope [nginx]=legacy [nginx-lua]=envelope)
declare -A TDESC=(
	[baseline]="plain httputil.ReverseProxy with a buffer pool on http.DefaultTransport (bench/baseline -transport default): most of its requests dial the backend anew (2 idle connections per host)"
	[baseline-again]="the same baseline measured a second time in each round: its ratio to the baseline is this run's noise"
	[baseline-tuned]="the same ReverseProxy with envelope-proxy's upstream pool sizes and no transport compression (bench/baseline -transport tuned): Go's reverse proxy at its cheapest"
	[baseline-legacy-http]="the tuned proxy plus what envelope-proxy adds at the HTTP level for a legacy client, and nothing else of it: X-Forwarded-*, the upstream timeout (ResponseHeaderTimeout) and Vary (bench/baseline -transport tuned -legacy-http)"
	[legacy]="envelope-proxy, legacy client key (bytes pass unchanged)"
	[envelope]="envelope-proxy, envelope client key (rewritten), access log off"
	[envelope-log]="envelope-proxy, envelope client key, access log on (the default) to $OUT/eplog.log"
	[envelope-pg]="envelope-proxy, envelope client key, access log off, the dashboard's evidence in PostgreSQL (state_url) instead of SQLite" # completed with the store's location once started
	[legacy-ref]="envelope-proxy built at $COMPARE_REF (${COMPARE_COMMIT:0:12}), legacy client key"
	[envelope-ref]="envelope-proxy built at $COMPARE_REF (${COMPARE_COMMIT:0:12}), envelope client key, access log off"
	[nginx]="nginx proxy_pass, 1 worker, upstream keep-alive, 32 KiB buffers, no access log (bench/peers/nginx)"
	[nginx-lua]="nginx + Lua doing the same envelope rewrite, 1 worker, no access log (bench/peers/nginx-lua): the transforming peer"
)

key_args() { # the curl/wrk header arguments of a target
	local k=${TKEY[$1]}
	[[ -n $k ]] && printf '%s\n' -H "X-API-Key: $k"
	return 0
}

# The default-transport baseline dials thousands of upstream connections a
# second; their TIME_WAIT sockets need Linux's reuse of them on loopback
# (net.ipv4.tcp_tw_reuse 1 or 2; 2 is the default).
if [[ $(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || echo 2) == 0 ]]; then
	log "warning: net.ipv4.tcp_tw_reuse is 0: the baseline may run out of loopback ports"
fi
log "starting servers (backend :$BACKEND_PORT, baseline :$BASE_PORT, tuned baseline :$TUNED_PORT$( ((LEGACY_HTTP_TARGET)) && echo ", with legacy-http :$TUNEDHTTP_PORT"), envelope-proxy :$EP_PORT, with access log :$EPLOG_PORT$( ((PG)) && echo ", with PostgreSQL evidence :$EPPG_PORT")$( ((PEERS)) && echo ", nginx :$NGINX_PORT, nginx-lua :$NGINXLUA_PORT"))"
start_server backend
start_server baseline
start_server tuned
((LEGACY_HTTP_TARGET)) && start_server tunedhttp
start_server ep
((ACCESS_LOG_TARGET)) && start_server eplog

# envelope-pg must write its evidence to PostgreSQL: /readyz stays 200
# when the store cannot be reached (the evidence is then held in memory),
# so its body's evidence line is checked, at start and after the rounds.
pg_evidence() { # -> the evidence line of envelope-pg's /readyz, or dies
	local body line
	body=$(curl -s --max-time 5 "${READY_URL[eppg]}") || die "envelope-pg: GET ${READY_URL[eppg]} failed"
	line=$(grep '^evidence: ' <<<"$body" || true)
	[[ $line == "evidence: postgres "* && $line != *" in memory"* ]] ||
		die "envelope-pg does not keep its evidence in PostgreSQL (STATE_URL): its /readyz says \"${line:-$body}\"; log: $OUT/eppg.log"
	echo "$line"
}
if ((PG)); then
	start_server eppg
	PG_EVIDENCE=$(pg_evidence)
	log "envelope-pg: $PG_EVIDENCE"
	# The location as the proxy shows it: the URL without its password.
	TDESC[envelope-pg]+=" (${PG_EVIDENCE#evidence: postgres })"
fi
((CMP)) && start_server epref
if ((PEERS)); then
	start_server nginx
	start_server nginx-lua
fi

# --- byte-for-byte verification ------------------------------------------
CREDITS_LEGACY='{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 50, "required": 120}}'
CREDITS_ENVELOPE='{"data":null,"success":false,"message":"Insufficient credits. Required: 120, available: 50","errors":[{"insufficient_credits":["Insufficient credits. Required: 120, available: 50"]}]}'
ENV_PREFIX='{"data":'
ENV_SUFFIX=',"success":true,"message":"OK"}'

fetch() { # url out_file [curl args...] -> prints the status code
	local url=$1 out=$2
	shift 2
	curl -s --max-time 30 -o "$out" -w '%{http_code}' "$@" "$url" || die "curl $url failed"
}

log "verifying responses byte for byte"
V=$OUT/verify
VERIFY_PATHS=(/small /credits /large "/huge?bytes=3000001") # the last one is above max_body_bytes: the streamed wrap
for path in "${VERIFY_PATHS[@]}"; do
	vname=$(tr -c 'a-z0-9\n' _ <<<"${path#/}")
	status=$(fetch "http://127.0.0.1:$BACKEND_PORT$path" "$V/backend-$vname")
	case $path in
	/small) [[ $status == 200 ]] && (($(wc -c <"$V/backend-$vname") >= 150)) || die "backend /small: status $status" ;;
	/credits) [[ $status == 403 && $(cat "$V/backend-$vname") == "$CREDITS_LEGACY" ]] || die "backend /credits: unexpected status $status or body" ;;
	/large) [[ $status == 200 && $(wc -c <"$V/backend-$vname") == 1048576 ]] || die "backend /large: status $status, $(wc -c <"$V/backend-$vname") bytes, want 1048576" ;;
	/huge*) [[ $status == 200 && $(wc -c <"$V/backend-$vname") == 3000001 ]] || die "backend $path: status $status, wrong size" ;;
	esac
	for t in "${TARGETS[@]}"; do
		mapfile -t hdr < <(key_args "$t")
		got_status=$(fetch "${TURL[$t]}$path" "$V/$t-$vname" "${hdr[@]}")
		if [[ ${TMODE[$t]} == legacy ]]; then
			want_status=$status
			cp "$V/backend-$vname" "$V/$t-$vname.want"
		elif [[ $path == /credits ]]; then
			want_status=402
			printf %s "$CREDITS_ENVELOPE" >"$V/$t-$vname.want"
		else
			want_status=200
			{ printf %s "$ENV_PREFIX"; cat "$V/backend-$vname"; printf %s "$ENV_SUFFIX"; } >"$V/$t-$vname.want"
		fi
		[[ $got_status == "$want_status" ]] || die "MISMATCH: $t $path: status $got_status, want $want_status (body in $V/$t-$vname)"
		cmp -s "$V/$t-$vname" "$V/$t-$vname.want" ||
			die "MISMATCH: $t $path: body differs from the expected bytes: cmp $V/$t-$vname $V/$t-$vname.want"
		# The peers must send what envelope-proxy sends, or the comparison
		# is not fair: the same bytes as the legacy or the envelope target.
		if [[ $t == nginx || $t == nginx-lua ]]; then
			same=$([[ ${TMODE[$t]} == legacy ]] && echo legacy || echo envelope)
			cmp -s "$V/$t-$vname" "$V/$same-$vname" ||
				die "MISMATCH: $t $path: body differs from envelope-proxy's $same target: cmp $V/$t-$vname $V/$same-$vname"
			echo "   ok  $t $path ($got_status, $(wc -c <"$V/$t-$vname") bytes, identical to envelope-proxy's $same target)" >&2
			continue
		fi
		echo "   ok  $t $path ($got_status, $(wc -c <"$V/$t-$vname") bytes)" >&2
	done
done

# --- load runs -------------------------------------------------------------
# Peak RSS per target: the server under test is restarted before every wrk
# run, and its VmHWM is read right after the run. envelope-proxy serves the
# legacy and the envelope targets from one process (the key picks the mode),
# so a long-lived process would report one peak for both; restarting it for
# each (workload, target) run keeps the interleaved rounds and gives each
# target its own peak (the table shows the largest over the rounds). The
# baseline is restarted the same way, so every target starts equally cold.
# The backend runs for the whole benchmark.
to_ms() { # "1.23ms" / "850.00us" / "1.02s" / "2.00m" -> milliseconds
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.3f", n }'
}

# us_per_req ticks_before ticks_after requests -> CPU microseconds per request
us_per_req() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz * 1e6 / n}'; }

declare -A RPS=() ROUND_RPS=() CPU=() BE_CPU=() P50=() P99=() PEAK=() NOTES=()
for ((r = 1; r <= ROUNDS; r++)); do
	# Rotate the order of the targets each round, so none always runs first.
	order=()
	for ((i = 0; i < ${#TARGETS[@]}; i++)); do
		order+=("${TARGETS[$(((i + r - 1) % ${#TARGETS[@]}))]}")
	done
	for w in "${WORKLOADS[@]}"; do
		for t in "${order[@]}"; do
			restart_server "${TSERVER[$t]}"
			mapfile -t hdr < <(key_args "$t")
			f=$OUT/wrk/r$r-$w-$t.txt
			log "round $r/$ROUNDS $w $t"
			# The warm-up: a freshly started server's first second holds its
			# start-up's tail (the first collections of what loading its
			# config left, the upstream connections being dialled, the heap
			# growing), which a long-running server has behind it.
			if ((WARMING)); then
				"${PIN_LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "${hdr[@]}" "${TURL[$t]}${WPATH[$w]}" >"$f.warmup" 2>&1 ||
					die "wrk (warm-up) failed for $w $t: $(cat "$f.warmup")"
			fi
			srv0=$(cpu_ticks "${TSERVER[$t]}")
			be0=$(cpu_ticks backend)
			"${PIN_LOAD[@]}" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${hdr[@]}" "${TURL[$t]}${WPATH[$w]}" >"$f" 2>&1 ||
				die "wrk failed for $w $t: $(cat "$f")"
			srv1=$(cpu_ticks "${TSERVER[$t]}")
			be1=$(cpu_ticks backend)
			rps=$(awk '/^Requests\/sec:/ {print $2}' "$f")
			reqs=$(awk '/ requests in / {print $1; exit}' "$f")
			p50=$(awk '$1 == "50%" {print $2; exit}' "$f")
			p99=$(awk '$1 == "99%" {print $2; exit}' "$f")
			[[ -n $rps && -n $reqs && -n $p50 && -n $p99 ]] && ((reqs > 0)) || die "cannot parse wrk output $f"
			RPS[$w|$t]+="$rps "
			ROUND_RPS[$r|$w|$t]=$rps
			CPU[$w|$t]+="$(us_per_req "$srv0" "$srv1" "$reqs") "
			BE_CPU[$w|$t]+="$(us_per_req "$be0" "$be1" "$reqs") "
			P50[$w|$t]+="$(to_ms "$p50") "
			P99[$w|$t]+="$(to_ms "$p99") "
			kib=$(peak_kib "${TSERVER[$t]}")
			((kib > ${PEAK[$w|$t]:-0})) && PEAK[$w|$t]=$kib
			if grep -q '^  Socket errors' "$f"; then
				NOTES[$w|$t]+="r$r: $(grep '^  Socket errors' "$f" | sed 's/^ *//'); "
			fi
			# Non-2xx is expected for credits (403 / 402), an error anywhere else.
			if [[ $w != credits ]] && grep -q 'Non-2xx or 3xx' "$f"; then
				NOTES[$w|$t]+="r$r: $(grep 'Non-2xx or 3xx' "$f" | sed 's/^ *//'); "
			fi
		done
	done
done
BACKEND_PEAK=$(peak_kib backend)
# envelope-pg's last run ended with its evidence still written to PostgreSQL.
if ((PG)); then
	PG_EVIDENCE=$(pg_evidence)
	log "envelope-pg after the rounds: $PG_EVIDENCE"
fi

# --- the streamed wrap -------------------------------------------------------
# One download of HUGE_BYTES through the envelope target (and through the
# baseline), each proxy freshly restarted first, so that its VmHWM afterwards
# is the peak of the stream itself.
HUGE_ROWS=()
huge_run() { # target
	local t=$1 want out rc=0 status size secs mibs kib0 kib
	if [[ ${TMODE[$t]} == envelope ]]; then want=$((HUGE_BYTES + ${#ENV_PREFIX} + ${#ENV_SUFFIX})); else want=$HUGE_BYTES; fi
	restart_server "${TSERVER[$t]}"
	kib0=$(peak_kib "${TSERVER[$t]}")
	mapfile -t hdr < <(key_args "$t")
	log "streaming $HUGE_BYTES bytes through $t"
	out=$("${PIN_LOAD[@]}" curl -s -o /dev/null --max-time "$HUGE_MAX_TIME" -w '%{http_code} %{size_download} %{time_total}' \
		"${hdr[@]}" "${TURL[$t]}/huge?bytes=$HUGE_BYTES") || rc=$?
	read -r status size secs <<<"$out"
	kib=$(peak_kib "${TSERVER[$t]}")
	((rc == 0)) || die "streaming through $t: curl exit $rc after ${secs:-?} s, ${size:-?} bytes (timeout ${HUGE_MAX_TIME}s)"
	[[ $status == 200 && $size == "$want" ]] || die "streaming through $t: status $status, $size bytes, want 200 and $want"
	mibs=$(awk -v b="$size" -v s="$secs" 'BEGIN {printf "%.0f", b / 1048576 / s}')
	HUGE_ROWS+=("| $t | $size | $(awk -v s="$secs" 'BEGIN {printf "%.1f", s}') | $mibs | $(mib "$kib") (at start $(mib "$kib0")) |")
}
if ((HUGE_BYTES > 0)); then
	huge_run envelope
	huge_run baseline
fi

# --- many connections --------------------------------------------------------
# CONNS_CLIENTS keep-alive clients against an upstream that answers after
# 100 ms: every connection has a request in flight all the time. Each target
# is restarted first so its VmHWM is this phase's peak.
CONN_ROWS=()
conns_run() { # target
	local t=$1 f rps errs non2xx kib
	restart_server "${TSERVER[$t]}"
	mapfile -t hdr < <(key_args "$t")
	f="$OUT/wrk/conns-$t.txt"
	log "$CONNS_CLIENTS connections through $t"
	"${PIN_LOAD[@]}" wrk -t1 -c"$CONNS_CLIENTS" -d"$DURATION" --timeout 5s --latency "${hdr[@]}" "${TURL[$t]}/slow" >"$f" 2>&1 ||
		die "wrk failed for connections $t: $(cat "$f")"
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$f")
	errs=$(grep '^  Socket errors' "$f" | sed 's/^ *Socket errors: *//' || true)
	non2xx=$(awk '/Non-2xx or 3xx/ {print $NF}' "$f")
	kib=$(peak_kib "${TSERVER[$t]}")
	CONN_ROWS+=("| $t | $(printf '%.0f' "$rps") | $(to_ms "$(awk '$1 == "99%" {print $2; exit}' "$f")") | ${errs:-none} | ${non2xx:-0} | $(mib "$kib") |")
}
if ((CONNS_CLIENTS > 0)); then
	conns_run envelope
	conns_run baseline
	conns_run baseline-tuned
fi

# --- results ---------------------------------------------------------------
median() { # numbers... -> median
	printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {
		if (NR % 2) m = a[(NR + 1) / 2]; else m = (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%.3f", m }'
}
span() { # printf-format numbers... -> "lo-hi", each rounded as median rounds
	local fmt=$1
	shift
	printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.3f %.3f", lo, hi}' | {
		read -r lo hi
		# shellcheck disable=SC2059 # fmt is one of this script's formats
		printf "$fmt-$fmt" "$lo" "$hi"
	}
}
most() { printf '%s\n' "$@" | sort -g | tail -1; }  # numbers... -> the largest
least() { printf '%s\n' "$@" | sort -g | head -1; } # numbers... -> the smallest
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {print (b > 0 ? a / b : 0)}'; }
round_ratios() { # workload target reference -> the target's req/s over the reference's, one per round
	local r
	for ((r = 1; r <= ROUNDS; r++)); do
		ratio "${ROUND_RPS[$r|$1|$2]}" "${ROUND_RPS[$r|$1|$3]}"
	done
}
CPU_MODEL=$(lscpu 2>/dev/null | awk -F: '/^Model name/ {sub(/^[ \t]+/, "", $2); print $2; exit}')
[[ -n $CPU_MODEL ]] || CPU_MODEL=$(awk -F: '/^model name/ {sub(/^[ \t]+/, "", $2); print $2; exit}' /proc/cpuinfo)
ELAPSED=$((SECONDS - START_TIME))

{
	echo "### envelope-proxy load benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- machine: nproc $NPROC, CPU $CPU_MODEL, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- $(go version | sed 's/^go version //'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
	echo "- $PINNING"
	echo "- wrk -t1 -c$CONNECTIONS -d$DURATION --latency, $ROUNDS interleaved rounds; medians over rounds; peak RSS is the largest VmHWM over rounds (server restarted before each run$( ((WARMING)) && echo ", then warmed by an unmeasured wrk -d$WARMUP of the same load"))"
	for t in "${TARGETS[@]}"; do echo "- \`$t\`: ${TDESC[$t]}"; done
	echo
	# The references every target is read against, as same-round ratios.
	REFS=(baseline baseline-tuned)
	# legacy against the tuned proxy doing the same HTTP work.
	((LEGACY_HTTP_TARGET)) && REFS+=(baseline-legacy-http)
	((PEERS)) && REFS+=(nginx nginx-lua)
	# envelope-pg against the SQLite default.
	((PG)) && REFS+=(envelope)
	# Every target against envelope-proxy as it was at COMPARE_REF.
	((CMP)) && REFS+=(legacy-ref envelope-ref)
	declare -A RLABEL=([baseline]=baseline [baseline-tuned]=tuned [baseline-legacy-http]=legacy-http [nginx]=nginx [nginx-lua]=nginx-lua [envelope]=envelope [legacy-ref]=legacy@ref [envelope-ref]=envelope@ref)
	# Each target's median CPU a request and fastest round, once: the
	# tables read every reference's against every target's.
	declare -A MCPU=() BEST=()
	for w in "${WORKLOADS[@]}"; do
		for t in "${TARGETS[@]}"; do
			# shellcheck disable=SC2086
			MCPU[$w|$t]=$(median ${CPU[$w|$t]})
			# shellcheck disable=SC2086
			BEST[$w|$t]=$(most ${RPS[$w|$t]})
		done
	done
	refcols() { # prefix -> " | prefix label" per reference
		local ref
		for ref in "${REFS[@]}"; do printf ' | %s%s' "$1" "${RLABEL[$ref]}"; done
	}
	refsep() { local ref; for ref in "${REFS[@]}"; do printf '|---:'; done; }

	echo "Throughput, medians over rounds. **vs X** is the median over rounds of the target's req/s divided by X's req/s in the same round (the runs of one round are back to back, so this cancels slow drifts of the machine's speed): above 1, faster than X. **CPU µs/req** is the CPU time (user + system, from /proc$( ((PEERS)) && echo "; for nginx master + worker")) the server under test used per request. p50 and p99 are wrk's latency percentiles; peak RSS is the largest VmHWM over the rounds$( ((PEERS)) && echo " (for nginx the worker's)")."
	echo
	echo "| workload | target | req/s$(refcols "vs ") | CPU µs/req | p50 ms | p99 ms | peak RSS MiB |"
	echo "|---|---|---:$(refsep)|---:|---:|---:|---:|"
	for w in "${WORKLOADS[@]}"; do
		for t in "${TARGETS[@]}"; do
			# shellcheck disable=SC2086
			row="| $w | $t | $(printf %.0f "$(median ${RPS[$w|$t]})")"
			for ref in "${REFS[@]}"; do
				mapfile -t rr < <(round_ratios "$w" "$t" "$ref")
				row+=" | $(printf %.2f "$(median "${rr[@]}")")"
			done
			# shellcheck disable=SC2086
			row+=" | $(printf %.1f "${MCPU[$w|$t]}") | $(printf %.2f "$(median ${P50[$w|$t]})") | $(printf %.2f "$(median ${P99[$w|$t]})") | $(mib "${PEAK[$w|$t]}") |"
			echo "$row"
		done
	done
	echo
	if ((NOISE_TARGET)); then
		echo "\`baseline-again\` is the baseline measured a second time in every round: its same-round ratios to \`baseline\` (its range in the next table) are how far apart two identical targets land on this machine during this run. A ratio within that band of 1.00 is not a difference this run can tell."
		echo
	fi
	if ((LEGACY_HTTP_TARGET)); then
		echo "\`baseline-legacy-http\` is the tuned proxy doing the HTTP work envelope-proxy does for a legacy client (X-Forwarded-*, the upstream timeout, Vary) and nothing else: its **vs tuned** is what that work costs in net/http, and \`legacy\`'s **vs legacy-http** what envelope-proxy's own code (routing, metrics, evidence) costs on top."
		echo
	fi
	if ((PG)); then
		echo "\`envelope-pg\` is \`envelope\` with the dashboard's evidence in PostgreSQL instead of SQLite: its **vs envelope** ratio is what keeping the evidence in PostgreSQL costs$( ((NOISE_TARGET)) && echo ", within the noise of the SQLite default when its range in the next table lies within \`baseline-again\`'s range vs baseline")."
		echo
	fi
	if ((CMP)); then
		echo "\`legacy-ref\` and \`envelope-ref\` are envelope-proxy built at $COMPARE_REF (${COMPARE_COMMIT:0:12}): \`legacy\`'s **vs legacy@ref** and \`envelope\`'s **vs envelope@ref** are what the change since then costs (above 1, faster now)$( ((NOISE_TARGET)) && echo ", no difference this run can tell when their ranges in the next table lie within \`baseline-again\`'s range vs baseline")."
		echo
	fi
	echo "Spread over the rounds: the lowest and highest round of req/s, and of each same-round ratio."
	echo
	echo "| workload | target | req/s range$(refcols "vs ") |"
	echo "|---|---|---:$(refsep)|"
	for w in "${WORKLOADS[@]}"; do
		for t in "${TARGETS[@]}"; do
			# shellcheck disable=SC2086
			row="| $w | $t | $(span %.0f ${RPS[$w|$t]})"
			for ref in "${REFS[@]}"; do
				mapfile -t rr < <(round_ratios "$w" "$t" "$ref")
				row+=" | $(span %.2f "${rr[@]}")"
			done
			echo "$row |"
		done
	done
	echo
	# Interference from the rest of a shared machine (host stalls, steal,
	# another tenant's cache traffic) only ever slows a run down, so each
	# target's fastest round is the nearest to its unimpeded rate, whatever
	# round it fell in: a second reading beside the same-round medians, which
	# a stall in many rounds drags down.
	echo "Best rounds: each target's fastest round of req/s (whichever round it was), its ratio to each reference's fastest round, and its least CPU µs a request over the rounds. Interference from the rest of the machine only ever slows a run, so these are each target's nearest to its unimpeded rate: read them beside the medians above, which stalls in many rounds drag down."
	echo
	echo "| workload | target | best req/s$(refcols "vs ") | least CPU µs/req |"
	echo "|---|---|---:$(refsep)|---:|"
	for w in "${WORKLOADS[@]}"; do
		for t in "${TARGETS[@]}"; do
			row="| $w | $t | $(printf %.0f "${BEST[$w|$t]}")"
			for ref in "${REFS[@]}"; do
				row+=" | $(printf %.2f "$(ratio "${BEST[$w|$t]}" "${BEST[$w|$ref]}")")"
			done
			# shellcheck disable=SC2086
			echo "$row | $(printf %.1f "$(least ${CPU[$w|$t]})") |"
		done
	done
	echo
	echo "CPU per request: the server's CPU µs per request (median over rounds) and its ratio to each reference's (below 1: cheaper per request); backend µs/req is the backend's CPU per request in the same runs, on the same core."
	echo
	echo "| workload | target | CPU µs/req$(refcols "CPU vs ") | backend µs/req |"
	echo "|---|---|---:$(refsep)|---:|"
	for w in "${WORKLOADS[@]}"; do
		for t in "${TARGETS[@]}"; do
			row="| $w | $t | $(printf %.1f "${MCPU[$w|$t]}")"
			for ref in "${REFS[@]}"; do
				row+=" | $(printf %.2f "$(ratio "${MCPU[$w|$t]}" "${MCPU[$w|$ref]}")")"
			done
			# shellcheck disable=SC2086
			echo "$row | $(printf %.1f "$(median ${BE_CPU[$w|$t]})") |"
		done
	done
	echo
	if ((${#HUGE_ROWS[@]})); then
		echo "Streamed wrap of a $HUGE_BYTES-byte JSON array (one curl; the envelope adds 39 bytes):"
		echo
		echo "| target | bytes received | seconds | MiB/s | peak RSS MiB |"
		echo "|---|---:|---:|---:|---:|"
		printf '%s\n' "${HUGE_ROWS[@]}"
		echo
	fi
	if ((${#CONN_ROWS[@]})); then
		echo "$CONNS_CLIENTS keep-alive clients, upstream answering in 100 ms (/slow):"
		echo
		echo "| target | req/s | p99 ms | socket errors | non-2xx | peak RSS MiB |"
		echo "|---|---:|---:|---|---:|---:|"
		printf '%s\n' "${CONN_ROWS[@]}"
		echo
	fi
	echo "Backend peak RSS: $(mib "$BACKEND_PEAK") MiB. Run time: ${ELAPSED}s."
	if ((${#NOTES[@]})); then
		echo
		echo "Warnings:"
		for k in "${!NOTES[@]}"; do echo "- $k: ${NOTES[$k]}"; done
	fi
} | tee "$OUT/results.md"
echo "(raw wrk outputs in $OUT/wrk, the table in $OUT/results.md)" >&2
