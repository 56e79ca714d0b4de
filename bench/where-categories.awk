# Sorts the lines of `perf report --no-children --sort dso,sym -g none
# --stdio` ("12.34%  dso  [k] symbol") into categories and prints each
# category's share of the samples. bench/where.sh uses it.
/%/ {
	p = $1; sub(/%/, "", p); sym = $NF; dso = $2; kernel = ($3 == "[k]")
	if (kernel) {
		if (sym ~ /task_switch|__schedule|^schedule|pick_next|enqueue|dequeue|try_to_wake|ttwu|update_curr|raw_spin_unlock_irq|select_task|switch_mm|__switch_to|hrtimer|nanosleep/) c = "kernel: scheduling, wake-ups, sleeps"
		else if (sym ~ /tcp|inet|ip_|skb|sock|dev_queue|net_rx|loopback|netif|napi|sk_|softirq|local_bh|dst_|nf_|ipv4|copy_user|copyout|copyin|memcpy|memmove|csum/) c = "kernel: TCP/IP over loopback, copies"
		else if (sym ~ /epoll|ep_|poll/) c = "kernel: epoll"
		else if (sym ~ /futex/) c = "kernel: futex"
		else c = "kernel: syscall entry and exit, other"
	} else if (dso ~ /nginx/) c = "nginx"
	else if (dso ~ /libc/) c = "libc"
	else if (dso ~ /lua|luajit/) c = "LuaJIT, lua-cjson"
	else if (sym ~ /^runtime\.(gcDrain|scanobject|markroot|scanstack|greyobject|findObject|gcBgMarkWorker|wbBuf|bulkBarrier|scanblock|sweepone|tryDeferToSpanScan|spanOf|typePointers|scanSpan)|^runtime\.\(\*spanSet\)|^internal\/runtime\/gc|[Ss]weep|gcWriteBarrier|gcMark/) c = "Go: garbage collector"
	else if (sym ~ /mallocgc|^runtime\.(newobject|makeslice|growslice|nextFreeFast|memclr|makemap|heapSetType|rawstring|rawbyteslice|concatstring|slicebytetostring|makechan)|mspan|mcache|mcentral|HeapBits/) c = "Go: allocation"
	else if (sym ~ /^runtime\.(schedule|findRunnable|park_m|gopark|goready|ready|casgstatus|execute|mcall|gogo|lock2|unlock2|netpoll|runq|wakep|note|futex|stopm|startm|selectgo|chanrecv|chansend|send|recv|sel|acquirem|releasem|newproc|gf|goexit|systemstack|checkTimers|nanotime|usleep|osyield|procyield|mPark|handoff|gosched|entersyscall|exitsyscall|reentersyscall|casGTo|lock|unlock|sem|injectglist|resetspinning|mput|mget|pidle|sysmon|retake)|[Tt]imer|^internal\/runtime\/syscall|__vdso|^syscall\.|^internal\/poll|^internal\/chacha8rand|^gogo$/) c = "Go: scheduler, channels, timers, syscall wrappers"
	else if (sym ~ /^(internal\/runtime\/maps|runtime\.map|aeshash|runtime\.memhash|runtime\.strhash)/) c = "Go: maps (headers)"
	else if (sym ~ /^(net\/http|net\/textproto|net\/url|bufio|net\.|context|strings|bytes|strconv|mime|sync|io\.|time\.|unicode|errors|fmt|mime|internal\/bytealg|internal\/godebug|runtime\.memmove|runtime\.memequal)|^(indexbytebody|memeqbody|countbody|cmpbody)/) c = "Go: net/http, textproto, bufio, context"
	else if (sym ~ /^(github\.com|go\.uber|main\.|crypto|encoding|hash|math)/) c = "Go: envelope-proxy and its libraries"
	else c = "other"
	share[c] += p
}
END { for (c in share) printf "%.1f%% %s\n", share[c], c }
