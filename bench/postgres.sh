#!/usr/bin/env bash
# bench/run.sh with the envelope-pg target: starts a throwaway PostgreSQL
# server, creates a database on it, runs
#
#   STATE_URL=postgres://postgres@127.0.0.1:PORT/envelope_proxy_bench?sslmode=disable bash bench/run.sh "$@"
#
# with the caller's environment passed through (DURATION, ROUNDS, PEERS, ...),
# prints what the proxy wrote to the database, and stops the server.
# See bench/README.md. Not a test: CI does not run it.
#
#   bash bench/postgres.sh                                   # the defaults of run.sh, plus envelope-pg
#   DURATION=2s ROUNDS=1 HUGE_BYTES=0 CONNS_CLIENTS=0 PEERS=0 bash bench/postgres.sh   # a smoke test
#
# The server is Debian's postgresql package (binaries under
# /usr/lib/postgresql/<version>/bin, the newest installed; PGSERVER_BINDIR
# names another directory, as for the Go tests' internal/pgserver). Run as
# root on Debian, the script installs the package with apt-get when it is
# missing, with a policy-rc.d that keeps Debian from starting its own
# cluster as a service. PostgreSQL refuses to run as root: under root the
# server runs as the postgres user (which the package creates).
#
# The cluster is made by initdb in a fresh directory under $TMPDIR (/tmp),
# with PostgreSQL's default settings but for these: it listens on 127.0.0.1
# only, on a free port below the kernel's ephemeral range, its Unix socket is
# in that directory, and trust authentication lets the postgres role in
# without a password (only this machine can reach it). With 2 or more CPUs
# (and taskset) the server runs on CPU 0, with wrk, not on CPU 1 where
# run.sh pins the proxies: the database stands for another machine, and the
# proxy's core carries only what the proxy itself does to write to it. The
# server is stopped (pg_ctl stop -m fast, by the PID in its postmaster.pid)
# and its directory removed when the script exits: at the end, on an error,
# or on SIGINT or SIGTERM.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DB=envelope_proxy_bench
PG_USER=postgres # the superuser role initdb makes, and the system user the server runs as under root

die() { echo "postgres.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

# --- the server's binaries ---------------------------------------------------
find_bindir() { # -> the directory of initdb, pg_ctl and psql, or nothing
	local d
	if [[ -n ${PGSERVER_BINDIR:-} ]]; then
		[[ -x $PGSERVER_BINDIR/initdb ]] && echo "$PGSERVER_BINDIR"
		return 0
	fi
	# The newest version first.
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rn); do
		[[ -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return 0; }
	done
	return 0
}
# shellcheck source=bench/apt-install.sh
source "$BENCH_DIR/apt-install.sh"

# --- cleanup -------------------------------------------------------------------
# PGDIR is the server's directory once made; PGPID the postmaster's PID once
# it has started. The EXIT trap stops exactly that process and removes the
# directory.
PGDIR=
PGPID=
BIN=
RAN=0 # 1 once run.sh has started: its failures are its own, not the server's
as_pg() { # command... -> runs it as the server's user (this user unless root)
	if [[ $(id -u) != 0 ]]; then
		"$@"
	elif command -v runuser >/dev/null 2>&1; then
		runuser -u "$PG_USER" -- "$@"
	else
		su "$PG_USER" -s /bin/sh -c "$(printf '%q ' "$@")"
	fi
}
gone() { # pid -> 0 once the process has exited (waiting up to 10 s)
	local i=0
	while kill -0 "$1" 2>/dev/null; do
		((i++ < 100)) || return 1
		sleep 0.1
	done
}
stop_pg() {
	[[ -n $PGPID ]] || return 0
	if kill -0 "$PGPID" 2>/dev/null; then
		log "stopping PostgreSQL (PID $PGPID)"
		# pg_ctl signals the PID in postmaster.pid, which is PGPID (SIGINT,
		# a fast shutdown: sessions ended, a checkpoint written), and waits
		# for the server to exit.
		as_pg "$BIN/pg_ctl" stop -D "$PGDIR/data" -m fast -w -t 60 >/dev/null 2>&1 || true
		if ! gone "$PGPID"; then
			# Still there: an immediate shutdown, which ends its sessions too.
			kill -QUIT "$PGPID" 2>/dev/null || true
			gone "$PGPID" || {
				echo "postgres.sh: PostgreSQL (PID $PGPID) did not stop; its directory $PGDIR is left" >&2
				return 0
			}
		fi
	fi
	PGPID=
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$?
	apt_install_cleanup
	stop_pg
	if [[ -n $PGDIR && -d $PGDIR && -z $PGPID ]]; then
		if ((rc != 0 && !RAN)) && [[ -f $PGDIR/postgres.log ]]; then
			echo "postgres.sh: the end of the PostgreSQL log:" >&2
			tail -20 "$PGDIR/postgres.log" >&2
		fi
		rm -rf "$PGDIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BIN=$(find_bindir)
if [[ -z $BIN && -z ${PGSERVER_BINDIR:-} ]]; then
	apt_install postgresql || true
	BIN=$(find_bindir)
fi
[[ -n $BIN ]] || die "PostgreSQL's initdb is missing (looked in ${PGSERVER_BINDIR:-/usr/lib/postgresql/*/bin}): apt-get install -y postgresql"
PSQL=$BIN/psql
[[ -x $PSQL ]] || PSQL=$(command -v psql) || die "psql is missing: apt-get install -y postgresql-client"
if [[ $(id -u) == 0 ]]; then
	id -u "$PG_USER" >/dev/null 2>&1 || die "running as root, and there is no $PG_USER user to run PostgreSQL as (the postgresql package makes it)"
fi
command -v ss >/dev/null 2>&1 || die "ss is missing"
PIN=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null 2>&1; then
	PIN=(taskset -c 0)
fi

# --- the cluster ---------------------------------------------------------------
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-postgres.XXXXXX")
[[ $PGDIR != *[[:space:]]* ]] || die "$PGDIR: the server's directory must have no spaces (set TMPDIR)"
if [[ $(id -u) == 0 ]]; then
	chown "$PG_USER:" "$PGDIR"
fi
log "initdb in $PGDIR ($("$BIN/postgres" --version))"
# -N skips the fsync of the new cluster's files: they live as long as the run.
as_pg "$BIN/initdb" -D "$PGDIR/data" -A trust -U "$PG_USER" -E UTF8 --locale=C -N >"$PGDIR/initdb.log" 2>&1 ||
	die "initdb failed: $(tail -20 "$PGDIR/initdb.log")"

# A free loopback port below the kernel's ephemeral range (as run.sh picks
# its own), tried again on another port if something takes it first.
# shellcheck source=bench/free-port.sh
source "$BENCH_DIR/free-port.sh"
started=0
for attempt in 1 2 3 4 5; do
	pick_port
	log "starting PostgreSQL on 127.0.0.1:$PORT"
	# pg_ctl -w returns once the server accepts connections. The postmaster
	# runs in its own session, so a Ctrl-C reaches it only through the trap.
	if as_pg "${PIN[@]}" "$BIN/pg_ctl" start -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 60 -s \
		-o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGDIR" >/dev/null 2>&1; then
		started=1
	fi
	PGPID=$(head -1 "$PGDIR/data/postmaster.pid" 2>/dev/null || true)
	[[ $PGPID =~ ^[0-9]+$ ]] || PGPID=
	((started)) && [[ -n $PGPID ]] && break
	stop_pg
	if ((attempt == 5)) || ! grep -q 'could not bind\|could not create any TCP/IP sockets' "$PGDIR/postgres.log" 2>/dev/null; then
		die "PostgreSQL did not start on 127.0.0.1:$PORT: $(tail -20 "$PGDIR/postgres.log" 2>/dev/null)"
	fi
	started=0
done
log "PostgreSQL is PID $PGPID"

psql_q() { # database sql -> the result, unaligned, without headers
	"$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$PG_USER" -d "$1" -c "$2"
}
psql_q postgres "CREATE DATABASE $DB" >/dev/null || die "CREATE DATABASE $DB failed"

# --- the benchmark -------------------------------------------------------------
STATE_URL="postgres://$PG_USER@127.0.0.1:$PORT/$DB?sslmode=disable"
log "STATE_URL=$STATE_URL bash bench/run.sh $*"
rc=0
RAN=1
STATE_URL=$STATE_URL bash "$BENCH_DIR/run.sh" "$@" || rc=$?

# What the proxy wrote: its tables exist once it has started, and its rows
# once a batch was written (every 5 s, and as it stops). run.sh itself
# checks envelope-pg's /readyz, which says where its evidence goes.
counts=$(psql_q "$DB" "SELECT (SELECT count(*) FROM envelope_proxy_deltas), (SELECT count(*) FROM envelope_proxy_rows),
	(SELECT count(*) FROM envelope_proxy_replicas), pg_size_pretty(pg_database_size(current_database()))" 2>&1) || counts=
if [[ -n $counts ]]; then
	IFS='|' read -r deltas rows replicas size <<<"$counts"
	log "PostgreSQL holds $deltas delta rows and $rows rolled rows of evidence from $replicas replica registration(s); database size $size"
	((rc != 0 || deltas + rows > 0)) || { echo "postgres.sh: envelope-pg wrote no evidence to PostgreSQL" >&2; rc=1; }
elif ((rc == 0)); then
	echo "postgres.sh: the evidence tables are missing from $DB: envelope-pg never wrote to PostgreSQL" >&2
	rc=1
fi
exit "$rc"
