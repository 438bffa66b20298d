#!/usr/bin/env bash
# restart-apiserver.sh [--down SECONDS]: restarts the local cluster's kube-apiserver, for fault
# tests (an API server restart during `ergomake up`): stops it (SIGTERM, SIGKILL after 3 s: its
# graceful shutdown would wait for long-running requests), keeps
# it down SECONDS (default 0), starts it again with the very command line it ran with (read from
# /proc, so whatever up.sh gave it), and waits until /readyz answers (at most 60 s). The cluster is
# shared: every client sees the outage, so keep it short and rare.
PROG=restart-apiserver
T0=$(date +%s%N)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

down=0
while [ $# -gt 0 ]; do
	case $1 in
	--down) down=$2; shift 2 ;;
	*) die "usage: $0 [--down SECONDS]" ;;
	esac
done

pid=$(pid_of kube-apiserver)
[ -n "$pid" ] || die "kube-apiserver is not running (make cluster-up)"
mapfile -d '' argv </proc/"$pid"/cmdline
[ "${#argv[@]}" -gt 1 ] || die "cannot read the command line of kube-apiserver (pid $pid)"

kill -TERM "$pid"
for _ in $(seq 30); do [ -d /proc/"$pid" ] || break; sleep 0.1; done
[ ! -d /proc/"$pid" ] || kill -KILL "$pid"
rm -f "$PIDS/kube-apiserver.pid"
say "stopped kube-apiserver (pid $pid)"
sleep "$down"

echo "### $(date -u +%FT%TZ) (restart-apiserver.sh) ${argv[*]}" >>"$LOGS/kube-apiserver.log"
setsid "${argv[@]}" >>"$LOGS/kube-apiserver.log" 2>&1 </dev/null 8>&- 9>&- &
echo $! >"$PIDS/kube-apiserver.pid"
say "started kube-apiserver (pid $!)"
end=$((SECONDS + 60))
until kc get --raw /readyz >/dev/null 2>&1; do
	[ -d /proc/"$(cat "$PIDS/kube-apiserver.pid")" ] || die "kube-apiserver exited right after it started" "$LOGS/kube-apiserver.log"
	[ "$SECONDS" -lt "$end" ] || die "kube-apiserver not ready after 60 s" "$LOGS/kube-apiserver.log"
	sleep 0.3
done
say "kube-apiserver: ready"
