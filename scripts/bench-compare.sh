#!/usr/bin/env bash
# Compare jobctl with Kafka's own performance tools on one Apache Kafka
# broker, in one run, and print one markdown table of ratios.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/bench-compare.sh [--count N] [--partitions P] [--nodes 1|3] [--keep-broker] [-- JOBCTL_BENCH_ARGS...]

Warms the broker up with an unmeasured ProducerPerformance run, then runs,
one after the other on the same single-node Apache Kafka broker:
  1. ProducerPerformance, defaults (acks=all, --record-size 150)   N records
  2. ProducerPerformance, tuned (batch.size=1048576 linger.ms=10)   N records
  3. ConsumerPerformance, reading the records of 1                 N records
  4. EndToEndLatency (acks=all, 150 B, one record at a time)       10,000 records
  5. jobctl bench on the same broker     (produce, processed, produce->DONE latency)
  6. jobctl bench --embedded             (the same on jobctl's embedded broker)
then prints a markdown table: each jobctl figure next to the Kafka tool
figure it is measured against, and their ratio (jobctl / tool; for
throughput higher is better, for latency lower is better). Progress and
the tools' own output go to stderr and to the log directory it names;
the table goes to stdout.

The broker: with JOBCTL_BENCH_BROKERS=host:port the run uses that cluster
(topics are created and deleted there). Otherwise it starts a broker of its
own with scripts/kafka.sh on other ports and another run dir, so a broker
from 'scripts/kafka.sh start' keeps running untouched, and stops it at the
end (--keep-broker leaves it running).

Options:
  --count N         records/jobs for the throughput runs (default 300000;
                    use 3000000 for the issue's long runs: the Java tools
                    need a few million records to warm up their JIT)
  --partitions P    partitions of every topic but EndToEndLatency's (default 6)
  --nodes 1|3       size of the cluster it starts (default 1). With 3 (the
                    issue's replicated target: scripts/kafka.sh start --nodes 3,
                    min.insync.replicas 2) every topic, the Kafka tools' and
                    jobctl bench's, has replication factor 3, and acks=all
                    waits for two replicas. The embedded run is skipped (it
                    has no replicas to compare). With JOBCTL_BENCH_BROKERS,
                    --nodes 3 only sets the replication factor.
  --keep-broker     do not stop the broker this script started
  -- ARGS           passed to both 'jobctl bench' runs (e.g. -- --concurrency 16)
  -h, --help        this help

Environment:
  JOBCTL_BENCH_BROKERS          use this cluster instead of starting one
  JOBCTL_BENCH_KAFKA_RUN        run dir of the broker it starts (default /tmp/jobctl-bench-kafka)
  JOBCTL_BENCH_KAFKA_PORT_BASE  port base of that broker (default 39090: broker 39092)
  JOBCTL_BENCH_RECORD_SIZE      record size of the Kafka tools (default 150, about a mock job)
  JOBCTL_BENCH_E2E_RECORDS      EndToEndLatency records (default 10000)
  JOBCTL_BENCH_LATENCY_RATE     jobctl latency phase rate, jobs/s (default 1000)
  JOBCTL_BENCH_LATENCY_DURATION jobctl latency phase duration (default 10s)

Needs Go, Java 17+, Maven (scripts/kafka.sh fetches Kafka once) and jq.
Absolute numbers depend on the machine and on whatever else runs on it;
the ratios, measured minutes apart on one broker, are what to compare.
EOF
}

count=300000
partitions=6
nodes=1
keep_broker=false
bench_args=()
while [[ $# -gt 0 ]]; do
	case $1 in
	--count) count=${2:?--count needs a number}; shift 2 ;;
	--partitions) partitions=${2:?--partitions needs a number}; shift 2 ;;
	--nodes) nodes=${2:?--nodes needs 1 or 3}; shift 2 ;;
	--keep-broker) keep_broker=true; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; bench_args=("$@"); break ;;
	*) echo "bench-compare: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[[ $count =~ ^[1-9][0-9]*$ ]] || { echo "bench-compare: --count must be a positive number, got $count" >&2; exit 2; }
[[ $partitions =~ ^[1-9][0-9]*$ ]] || { echo "bench-compare: --partitions must be a positive number, got $partitions" >&2; exit 2; }
[[ $nodes == 1 || $nodes == 3 ]] || { echo "bench-compare: --nodes must be 1 or 3, got $nodes" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench-compare: needs jq (apt-get install jq)" >&2; exit 1; }

record_size=${JOBCTL_BENCH_RECORD_SIZE:-150}
e2e_records=${JOBCTL_BENCH_E2E_RECORDS:-10000}
latency_rate=${JOBCTL_BENCH_LATENCY_RATE:-1000}
latency_duration=${JOBCTL_BENCH_LATENCY_DURATION:-10s}

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
logs=$(mktemp -d /tmp/jobctl-bench-compare.XXXXXX)
id=$(date +%s)-$$
say() { printf '== %s\n' "$*" >&2; }

started_broker=false
kafka_env=()
if [[ -n ${JOBCTL_BENCH_BROKERS:-} ]]; then
	brokers=$JOBCTL_BENCH_BROKERS
else
	run_dir=${JOBCTL_BENCH_KAFKA_RUN:-/tmp/jobctl-bench-kafka}
	if [[ $run_dir == "${JOBCTL_KAFKA_RUN:-/tmp/jobctl-kafka}" || $run_dir == /tmp/jobctl-kafka ]]; then
		echo "bench-compare: JOBCTL_BENCH_KAFKA_RUN=$run_dir is the run dir of 'scripts/kafka.sh start'; starting there would wipe that cluster" >&2
		exit 2
	fi
	kafka_env=(JOBCTL_KAFKA_RUN="$run_dir" JOBCTL_KAFKA_PORT_BASE="${JOBCTL_BENCH_KAFKA_PORT_BASE:-39090}")
fi
kafka() { env "${kafka_env[@]}" scripts/kafka.sh "$@"; }

cleanup() {
	local rc=$?
	if [[ -n ${brokers:-} ]]; then
		kafka run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$brokers" \
			--delete --topic "bench-compare-$id-.*" >>"$logs/cleanup.log" 2>&1 || true
	fi
	if $started_broker && ! $keep_broker; then
		say "stopping the broker this script started"
		kafka stop >>"$logs/cleanup.log" 2>&1 || true
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building jobctl"
go build -o "$logs/jobctl" .
jobctl=$logs/jobctl

if [[ -z ${brokers:-} ]]; then
	say "starting a broker of its own (${kafka_env[*]})"
	brokers=$(kafka start --nodes "$nodes" 2>"$logs/kafka-start.log") || { cat "$logs/kafka-start.log" >&2; exit 1; }
	started_broker=true
fi
say "broker $brokers; logs in $logs"

topic() { # name partitions
	"$jobctl" -b "$brokers" topic create "bench-compare-$id-$1" --partitions "$2" --replication-factor "$nodes" >/dev/null
	echo "bench-compare-$id-$1"
}
perf_producer() { # log topic extra-props...
	local log=$1 t=$2
	shift 2
	kafka run-class org.apache.kafka.tools.ProducerPerformance --topic "$t" --num-records "$count" \
		--record-size "$record_size" --throughput -1 \
		--producer-props bootstrap.servers="$brokers" acks=all "$@" >"$log" 2>&1
	tail -1 "$log" >&2
	# "N records sent, X records/sec (...), ..." -> X
	tail -1 "$log" | sed -n 's/^[0-9]* records sent, \([0-9.]*\) records\/sec.*/\1/p'
}

# A fresh broker runs interpreted for its first seconds: whatever ran first
# would be measured against a slower broker. Warm it (not measured).
warm=$((count < 200000 ? count : 200000))
say "0/6 warm-up, not measured: ProducerPerformance, $warm records"
kafka run-class org.apache.kafka.tools.ProducerPerformance --topic "$(topic warm-up "$partitions")" --num-records "$warm" \
	--record-size "$record_size" --throughput -1 --producer-props bootstrap.servers="$brokers" acks=all >"$logs/warm-up.log" 2>&1

say "1/6 ProducerPerformance defaults: $count records of $record_size B, acks=all"
pp_topic=$(topic pp "$partitions")
pp=$(perf_producer "$logs/pp-defaults.log" "$pp_topic")

say "2/6 ProducerPerformance tuned: batch.size=1048576 linger.ms=10"
pp_tuned=$(perf_producer "$logs/pp-tuned.log" "$(topic pp-tuned "$partitions")" batch.size=1048576 linger.ms=10)

say "3/6 ConsumerPerformance: $count records"
kafka run-class org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$brokers" --topic "$pp_topic" \
	--num-records "$count" --hide-header --timeout 60000 >"$logs/cp.log" 2>&1
tail -1 "$logs/cp.log" >&2
# start, end, MB, MB/s, nMsg, nMsg/s, rebalance ms, fetch ms, fetch MB/s, fetch nMsg/s:
# the fetch rate leaves the group join out, as jobctl's processed rate does.
cp=$(tail -1 "$logs/cp.log" | awk -F', *' '{print $10}')

say "4/6 EndToEndLatency: $e2e_records records, acks=all, $record_size B, one at a time"
e2e_topic=$(topic e2e 1)
kafka run-class org.apache.kafka.tools.EndToEndLatency --bootstrap-server "$brokers" --topic "$e2e_topic" \
	--num-records "$e2e_records" --producer-acks all --record-size "$record_size" >"$logs/e2e.log" 2>&1
grep -E '^(Avg latency|Percentiles)' "$logs/e2e.log" >&2
# "Percentiles: 50th = 4, 99th = 30, 99.9th = 71" (whole milliseconds)
e2e_p50=$(sed -n 's/^Percentiles: 50th = \([0-9.]*\).*/\1/p' "$logs/e2e.log")
e2e_p99=$(sed -n 's/.* 99th = \([0-9.]*\).*/\1/p' "$logs/e2e.log")
e2e_p999=$(sed -n 's/.* 99.9th = \([0-9.]*\).*/\1/p' "$logs/e2e.log")
e2e_avg=$(sed -n 's/^Avg latency: \([0-9.]*\) ms.*/\1/p' "$logs/e2e.log")

bench() { # log args...
	local log=$1
	shift
	"$jobctl" bench --count "$count" --partitions "$partitions" --latency-rate "$latency_rate" --replication-factor "$rf" \
		--latency-duration "$latency_duration" --log-level warn -o json "$@" ${bench_args[@]+"${bench_args[@]}"} \
		>"$log" 2>"$log.stderr" || { cat "$log.stderr" >&2; exit 1; }
	jq -c '{produce: .produce.jobs_per_second, processed: .processed.jobs_per_second, latency: .latency}' "$log" >&2
}
say "5/6 jobctl bench on the same broker"
rf=$nodes bench "$logs/jobctl-kafka.json" -b "$brokers"
if ((nodes == 1)); then
	say "6/6 jobctl bench --embedded"
	rf=1 bench "$logs/jobctl-embedded.json" --embedded
else
	say "6/6 skipped: the embedded broker has no replicas"
	echo '{}' >"$logs/jobctl-embedded.json"
fi

# ---- the table ----
num() { jq -r "$2 // 0" "$1"; }
k=$logs/jobctl-kafka.json
e=$logs/jobctl-embedded.json
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
fmt_rate() { awk -v v="$1" 'BEGIN { printf "%.0f/s", v }'; }
fmt_ms() { awk -v v="$1" 'BEGIN { printf "%.2f ms", v }'; }
row() { # metric tool-label tool-value jobctl-kafka jobctl-embedded formatter
	local f=$6
	local emb="$($f "$5") | $(ratio "$5" "$3")"
	((nodes == 1)) || emb="skipped (no replicas) | -"
	printf '| %s | %s %s | %s | %s | %s |\n' "$1" "$2" "$($f "$3")" "$($f "$4")" "$(ratio "$4" "$3")" "$emb"
}
cat_settings=$(jq -r '"\(.workers) worker(s) x concurrency \(.concurrency), \(.partitions) partitions; latency \(.latency_rate) jobs/s for \(.latency_duration_seconds) s"' "$k")
echo
echo "jobctl $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, broker $brokers"
echo "$count records/jobs per throughput run, Kafka tools' records $record_size B, $nodes node(s), replication factor $nodes; jobctl bench: $cat_settings"
echo
echo "| metric | Kafka tool, same broker | jobctl on Apache Kafka | ratio | jobctl on embedded broker | ratio |"
echo "|---|---|---|---|---|---|"
row "produce" "ProducerPerformance defaults" "$pp" "$(num "$k" .produce.jobs_per_second)" "$(num "$e" .produce.jobs_per_second)" fmt_rate
row "produce" "ProducerPerformance tuned" "$pp_tuned" "$(num "$k" .produce.jobs_per_second)" "$(num "$e" .produce.jobs_per_second)" fmt_rate
row "processed, no-op handler" "ProducerPerformance defaults" "$pp" "$(num "$k" .processed.jobs_per_second)" "$(num "$e" .processed.jobs_per_second)" fmt_rate
row "processed, no-op handler" "ConsumerPerformance (fetch rate)" "$cp" "$(num "$k" .processed.jobs_per_second)" "$(num "$e" .processed.jobs_per_second)" fmt_rate
row "produce->DONE p50" "EndToEndLatency p50" "$e2e_p50" "$(num "$k" .latency.p50_ms)" "$(num "$e" .latency.p50_ms)" fmt_ms
row "produce->DONE p99" "EndToEndLatency p99" "$e2e_p99" "$(num "$k" .latency.p99_ms)" "$(num "$e" .latency.p99_ms)" fmt_ms
row "produce->DONE max" "EndToEndLatency p99.9" "$e2e_p999" "$(num "$k" .latency.max_ms)" "$(num "$e" .latency.max_ms)" fmt_ms
echo
echo "EndToEndLatency: average $e2e_avg ms; its percentiles are whole milliseconds (a p50 of 0 means under 1 ms: no ratio)."
echo "ratio = jobctl / Kafka tool: throughput higher is better, latency lower is better."
