#!/usr/bin/env bash
# view-rebuild.sh: how fast `jobctl serve` rebuilds its job view and how
# much memory it then holds (issue 12's view targets).
#
#   scripts/view-rebuild.sh BINARY TOPIC [RUNS]
#
# Starts BINARY serve on TOPIC (brokers from JOBCTL_BROKERS, default
# 127.0.0.1:9092), polls /readyz every 50 ms until it answers 200, then
# prints the time to ready, the records the view read (its progress), the
# events/s, and the process's RSS (VmRSS) and peak RSS (VmHWM) from /proc,
# each RUNS times (default 3). Make the topic first, e.g.:
#
#   jobctl topic create T --partitions 6
#   jobctl -t T produce --count 1000000
#   jobctl -t T consume -g G --sleep 0s -c 8 --timeout 3s --processed-log ''
set -euo pipefail
bin=${1:?usage: view-rebuild.sh BINARY TOPIC [RUNS]}
topic=${2:?usage: view-rebuild.sh BINARY TOPIC [RUNS]}
runs=${3:-3}
brokers=${JOBCTL_BROKERS:-127.0.0.1:9092}
port=${VIEW_REBUILD_PORT:-18477}

for run in $(seq 1 "$runs"); do
	start=$(date +%s.%N)
	"$bin" -b "$brokers" -t "$topic" serve --addr "127.0.0.1:$port" >/tmp/view-rebuild.$$.log 2>&1 &
	pid=$!
	trap 'kill $pid 2>/dev/null || true' EXIT
	until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)" = 200 ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "serve exited before it was ready:" >&2
			cat /tmp/view-rebuild.$$.log >&2
			exit 1
		fi
		sleep 0.05
	done
	ready=$(date +%s.%N)
	# Let the GC settle for a moment: RSS after the rebuild, not mid-way.
	sleep 2
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
	stats=$(curl -s "http://127.0.0.1:$port/stats")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	trap - EXIT
	records=$(printf '%s' "$stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
p = s.get("view") or {}
print(sum(x["next_offset"] for x in p.get("partitions", [])) if p else "?")
' 2>/dev/null || echo "?")
	jobs=$(printf '%s' "$stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
c = s.get("jobs") or {}
print(c.get("total", "?"))
' 2>/dev/null || echo "?")
	python3 - "$start" "$ready" "$records" "$jobs" "$rss" "$hwm" <<'PY'
import sys
start, ready, records, jobs, rss, hwm = sys.argv[1:]
secs = float(ready) - float(start)
rate = f"{int(records) / secs:,.0f} events/s" if records.isdigit() else "? events/s"
per = f"{int(rss) * 1024 / int(jobs):.0f} B/job" if jobs.isdigit() and int(jobs) else "? B/job"
print(f"ready in {secs:.2f} s, {records} records, {rate}, jobs {jobs}, RSS {int(rss)/1024:.0f} MiB ({per}), peak RSS {int(hwm)/1024:.0f} MiB")
PY
done
rm -f /tmp/view-rebuild.$$.log
