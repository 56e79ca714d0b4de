# shellcheck shell=bash
# Sourced by the bench scripts that start servers. The caller defines die.
# pick_port sets PORT to a free loopback port below the kernel's ephemeral
# range, distinct from every port it picked before: the servers are
# restarted during a run, and a port in that range could meanwhile become
# the source port of some client connection (wrk's, curl's, a proxy's
# upstream) and fail the next bind.

read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
PORT_LOW=10000
((EPHEMERAL_LOW - PORT_LOW >= 1000)) || PORT_LOW=1024
USED_PORTS=" "

# shellcheck disable=SC2034 # PORT is the result, read by the sourcing script
pick_port() {
	local i p
	for ((i = 0; i < 200; i++)); do
		p=$((PORT_LOW + RANDOM % (EPHEMERAL_LOW - PORT_LOW)))
		[[ $USED_PORTS == *" $p "* ]] && continue
		# Not in use in any state (listening or as either end of a connection).
		if ! ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null | grep -q .; then
			USED_PORTS+="$p "
			PORT=$p
			return 0
		fi
	done
	die "no free port found"
}
