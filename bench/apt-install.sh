# shellcheck shell=bash
# Sourced by the bench scripts that install Debian packages they need
# (run.sh: wrk and the peers; postgres.sh: the PostgreSQL server). The
# caller defines log. apt_install installs only when run as root on a
# machine with apt-get. While it installs, /usr/sbin/policy-rc.d answers 101
# so that no package starts a service (Debian's nginx would otherwise start
# on port 80, its postgresql a cluster of its own); the file is written only
# when there is none, and only that one is removed. The caller's EXIT trap
# runs apt_install_cleanup, so a script stopped while installing leaves no
# policy-rc.d behind.

POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_OURS=0
APT_UPDATED=0

apt_install() { # packages... -> 0 when apt-get installed them
	local rc=0
	[[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
	if [[ ! -e $POLICY_RC ]]; then
		printf '#!/bin/sh\n# Written by bench/%s while it installs packages: start no service.\nexit 101\n' "$(basename "$0")" >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
		POLICY_RC_OURS=1
	fi
	log "installing $*"
	# Another apt-get may hold dpkg's lock: wait for it (up to 10 minutes).
	if ((!APT_UPDATED)); then
		apt-get -o DPkg::Lock::Timeout=600 update >/dev/null || rc=$?
		APT_UPDATED=1
	fi
	((rc == 0)) && { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "$@" >/dev/null || rc=$?; }
	apt_install_cleanup
	return "$rc"
}

apt_install_cleanup() { # removes the policy-rc.d apt_install wrote, if any
	if ((POLICY_RC_OURS)); then
		rm -f "$POLICY_RC"
		POLICY_RC_OURS=0
	fi
	return 0
}
