#!/usr/bin/env bash
# Run a real Apache Kafka 4.x (KRaft) cluster on loopback from Maven jars, without
# Docker: for jobctl's integration/failure tests, benchmarks and local use.
# `scripts/kafka.sh --help` explains everything.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
CONF_DIR="$(dirname "$SELF")/kafka"
POM="$CONF_DIR/pom.xml"
BROKER_LOG4J="$CONF_DIR/log4j2-broker.xml"
TOOLS_LOG4J="$CONF_DIR/log4j2-tools.xml"

KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE_DIR="${JOBCTL_KAFKA_HOME:-${HOME:-/tmp}/.cache/jobctl/kafka}"
RUN_DIR="${JOBCTL_KAFKA_RUN:-/tmp/jobctl-kafka}"
START_TIMEOUT="${JOBCTL_KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${JOBCTL_KAFKA_STOP_TIMEOUT:-30}"
HOST=127.0.0.1
STATE_FILE="$RUN_DIR/cluster.env"
JAVA=java

usage() {
  cat <<EOF
Usage: scripts/kafka.sh COMMAND [ARGS]

Runs a real Apache Kafka ${KAFKA_VERSION} cluster (KRaft, no ZooKeeper, no Docker) on
127.0.0.1, from Kafka's jars on Maven Central. Needs bash, Java 17+ and Maven.
Progress and errors go to stderr; results (the bootstrap list, paths) to stdout.

Commands:
  fetch                 Download the broker + tools jars (mvn dependency:copy-dependencies)
                        into the cache. No-op when already complete; an interrupted
                        fetch is redone. Prints the lib dir.
  start [--nodes 1|3]   Fetch if needed, stop any cluster already running from the run
                        dir, wipe its data, format KRaft storage, start the node(s) in
                        the background and wait (up to JOBCTL_KAFKA_START_TIMEOUT s)
                        until every node answers a Kafka Metadata request listing all
                        brokers; a node that exits during startup (its log tail is
                        shown) gets one more try from fresh storage, its first log
                        kept in <run dir>/failed-start. Prints the bootstrap list, e.g.
                          127.0.0.1:9092                                  (1 node)
                          127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096    (3 nodes)
                        Each node is broker+controller. Node N: broker port 9090+2N,
                        controller port 9091+2N. Topics are never auto-created.
                        1 node: replication factors 1. 3 nodes: default and internal
                        topic replication factor 3, min.insync.replicas 2.
  stop                  SIGTERM every node, wait up to JOBCTL_KAFKA_STOP_TIMEOUT s, then
                        SIGKILL. Data and logs stay in the run dir. No error when
                        nothing runs.
  kill-node N           SIGKILL node N (1..3) of a running cluster (failure tests).
  start-node N          Restart node N with its existing data; wait until it answers.
  status                One line per node; exit 0 only if every node runs and answers.
  logs [-f] [-n LINES] [N]
                        Tail the log of node N (default: all nodes), 200 lines.
  run-class CLASS [ARGS...]
                        Run a Kafka Java tool class with the cached jars, Java heap
                        -Xmx512m, log4j at WARN on stderr, e.g.
                          scripts/kafka.sh run-class org.apache.kafka.tools.TopicCommand \\
                            --bootstrap-server 127.0.0.1:9092 --create --topic t \\
                            --partitions 6 --replication-factor 3
                          scripts/kafka.sh run-class org.apache.kafka.tools.ProducerPerformance \\
                            --topic t --num-records 1000000 --record-size 100 \\
                            --throughput -1 --producer-props bootstrap.servers=127.0.0.1:9092 acks=all
                        Also: org.apache.kafka.tools.ConsumerPerformance, EndToEndLatency,
                        BrokerApiVersionsCommand, MetadataQuorumCommand, ConsumerGroupCommand.
  -h, --help            This help.

Environment:
  KAFKA_VERSION                 Kafka version to fetch and run (default 4.4.0).
  JOBCTL_KAFKA_HOME             Jar cache root (default \$HOME/.cache/jobctl/kafka);
                                jars go to <root>/<version>/libs.
  JOBCTL_KAFKA_RUN              Run dir (default /tmp/jobctl-kafka): cluster.env, and per
                                node node-N/{server.properties,data/,kafka.log,kafka.pid}.
  JOBCTL_KAFKA_PORT_BASE        Port base B (default 9090): node N listens on B+2N (broker)
                                and B+1+2N (controller). With another run dir, a second
                                cluster can run beside the first (e.g. B=29090).
  JOBCTL_KAFKA_START_TIMEOUT    Seconds to wait for readiness (default 120).
  JOBCTL_KAFKA_STOP_TIMEOUT     Seconds to wait after SIGTERM before SIGKILL (default 30).
  JOBCTL_KAFKA_HEAP_OPTS        Broker heap (default "-Xms256m -Xmx1g"; 3 nodes: -Xmx512m each).
  JOBCTL_KAFKA_OPTS             Extra JVM options for the brokers.
  JOBCTL_KAFKA_TOOL_HEAP_OPTS   Heap for run-class (default "-Xmx512m").
  JOBCTL_KAFKA_TOOL_OPTS        Extra JVM options for run-class.
  JAVA_HOME                     Java to use (else \`java\` on PATH); must be 17 or newer.

Examples:
  BOOTSTRAP=\$(scripts/kafka.sh start)             # then: go test ./... ; scripts/kafka.sh stop
  scripts/kafka.sh start --nodes 3 && scripts/kafka.sh kill-node 2 && scripts/kafka.sh start-node 2
EOF
}

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now() { printf '%s' "${EPOCHREALTIME:-$SECONDS}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

PORT_BASE=${JOBCTL_KAFKA_PORT_BASE:-9090}
broker_port() { echo $((PORT_BASE + 2 * $1)); }
controller_port() { echo $((PORT_BASE + 1 + 2 * $1)); }
node_dir() { printf '%s/node-%s' "$RUN_DIR" "$1"; }

bootstrap_list() { # NODES
  local n out=""
  for ((n = 1; n <= $1; n++)); do out+="${out:+,}$HOST:$(broker_port "$n")"; done
  printf '%s' "$out"
}

check_version_name() {
  [[ $KAFKA_VERSION =~ ^[0-9A-Za-z][0-9A-Za-z._-]*$ ]] || die "bad KAFKA_VERSION '$KAFKA_VERSION'"
}

check_java() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then JAVA="$JAVA_HOME/bin/java"; fi
  command -v "$JAVA" >/dev/null 2>&1 ||
    die "java not found: Kafka needs Java 17+ (e.g. apt-get install openjdk-17-jre-headless)"
  local major
  major=$("$JAVA" -version 2>&1 | sed -n '1s/.* version "\([0-9]*\)[."].*/\1/p')
  if ! [[ $major =~ ^[0-9]+$ ]] || ((major < 17)); then
    die "Kafka 4.x needs Java 17 or newer; $JAVA is: $("$JAVA" -version 2>&1 | sed -n 1p)"
  fi
}

# ---------------------------------------------------------------- fetch

lib_dir() { printf '%s/%s/libs' "$CACHE_DIR" "$KAFKA_VERSION"; }
marker_file() { printf '%s/%s/.fetch-complete' "$CACHE_DIR" "$KAFKA_VERSION"; }
# The marker records the version and the pom's hash: editing the pom refetches.
fetch_stamp() { printf '%s %s' "$KAFKA_VERSION" "$(sha256sum <"$POM" | cut -d' ' -f1)"; }
fetched() { [[ -f $(marker_file) && "$(<"$(marker_file)")" == "$(fetch_stamp)" ]]; }

ensure_libs() {
  check_version_name
  fetched && return 0
  local vdir="$CACHE_DIR/$KAFKA_VERSION"
  mkdir -p "$vdir"
  if command -v flock >/dev/null 2>&1; then
    # Serialize concurrent fetches of the same version (parallel test runs).
    flock "$vdir/.lock" "$BASH" "$SELF" __fetch-locked
  else
    do_fetch
  fi
}

do_fetch() {
  fetched && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found (e.g. apt-get install maven)"
  local libs t0
  libs=$(lib_dir)
  t0=$(now)
  log "fetching Kafka $KAFKA_VERSION jars with Maven into $libs"
  rm -f "$(marker_file)"
  rm -rf "$libs"
  # (Debian's Maven prints colour resets even with -B: strip them.)
  if ! mvn -B -q -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" 2>&1 |
    sed $'s/\x1b\\[[0-9;]*m//g; /^$/d' >&2; then
    die "mvn dependency:copy-dependencies failed for Kafka $KAFKA_VERSION (see above)"
  fi
  [[ -f $libs/kafka_2.13-$KAFKA_VERSION.jar && -f $libs/kafka-tools-$KAFKA_VERSION.jar ]] ||
    die "fetch incomplete: kafka jars missing from $libs"
  fetch_stamp >"$(marker_file)"
  log "fetched $(find "$libs" -name '*.jar' | wc -l) jars ($(du -sh "$libs" | cut -f1)) in $(since "$t0") s"
}

cmd_fetch() {
  [[ $# -eq 0 ]] || die "fetch takes no arguments"
  ensure_libs
  lib_dir
  echo
}

# ---------------------------------------------------------------- state

# cluster.env: written by start, read by every other command, so that they use the
# cluster's own node count and jars whatever the environment says now.
read_state() {
  [[ -f $STATE_FILE ]] || return 1
  NODES=$(sed -n 's/^nodes=//p' "$STATE_FILE")
  LIBS=$(sed -n 's/^libs=//p' "$STATE_FILE")
  CLUSTER_VERSION=$(sed -n 's/^version=//p' "$STATE_FILE")
  [[ $NODES =~ ^[13]$ && -n $LIBS ]] || die "corrupt $STATE_FILE (run: scripts/kafka.sh start)"
}

require_state() {
  read_state || die "no cluster in $RUN_DIR (run: scripts/kafka.sh start)"
}

# Prints the pid of node N if that node's broker process is alive.
node_pid() {
  local f pid
  f="$(node_dir "$1")/kafka.pid"
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  if [[ -r /proc/$pid/cmdline ]]; then
    # Guard against a recycled pid: it must be our broker, with our properties file
    # (an exited child is a zombie with an empty cmdline until reaped).
    local -a argv
    local want arg found=1
    want="$(node_dir "$1")/server.properties"
    mapfile -d '' argv <"/proc/$pid/cmdline" 2>/dev/null || return 1
    for arg in "${argv[@]}"; do [[ $arg == "$want" ]] && found=0; done
    ((found == 0)) || return 1
  elif [[ -d /proc/self ]] || ! kill -0 "$pid" 2>/dev/null; then
    return 1
  fi
  echo "$pid"
}

node_running() { node_pid "$1" >/dev/null; }

known_nodes() { # nodes with a directory in the run dir
  local n
  for n in 1 2 3; do [[ -d $(node_dir "$n") ]] && echo "$n"; done
  return 0
}

# ---------------------------------------------------------------- readiness probe

# Internal: `kafka.sh __probe PORT` sends a Kafka Metadata request (v4, no topics)
# to 127.0.0.1:PORT over bash's /dev/tcp and prints the node ids of the brokers in
# the response (KRaft lists only registered, unfenced brokers). Non-zero exit when
# there is no valid answer. Always run it under `timeout`.
cmd_probe() {
  local port=$1 len i k count id hl rl hdr b ids=()
  { exec 3<>"/dev/tcp/$HOST/$port"; } 2>/dev/null || return 2
  # size=23 | api_key=3 (Metadata) | api_version=4 | correlation_id=7 |
  # client_id="kafka.sh" | topics=[] (none) | allow_auto_topic_creation=false
  printf '\x00\x00\x00\x17\x00\x03\x00\x04\x00\x00\x00\x07\x00\x08kafka.sh\x00\x00\x00\x00\x00' >&3
  read -ra hdr <<<"$(dd bs=1 count=4 <&3 2>/dev/null | od -An -v -tu1)"
  ((${#hdr[@]} == 4)) || return 3
  len=$(((hdr[0] << 24) | (hdr[1] << 16) | (hdr[2] << 8) | hdr[3]))
  ((len >= 12 && len <= 1048576)) || return 3
  read -ra b <<<"$(dd bs="$len" count=1 iflag=fullblock <&3 2>/dev/null | od -An -v -tu1 | tr '\n' ' ')"
  ((${#b[@]} == len)) || return 3
  u32() { echo $(((b[$1] << 24) | (b[$1 + 1] << 16) | (b[$1 + 2] << 8) | b[$1 + 3])); }
  u16() { echo $(((b[$1] << 8) | b[$1 + 1])); }
  (($(u32 0) == 7)) || return 3 # correlation id; then throttle_time_ms at 4
  count=$(u32 8)
  ((count <= 1000)) || return 3
  i=12
  for ((k = 0; k < count; k++)); do
    ((i + 4 <= len)) || return 3
    id=$(u32 "$i")
    hl=$(u16 $((i + 4)))
    i=$((i + 6 + hl + 4)) # node_id, host, port
    ((i + 2 <= len)) || return 3
    rl=$(u16 "$i")
    i=$((i + 2))
    ((rl == 65535)) || i=$((i + rl)) # rack: nullable string
    ((i <= len)) || return 3
    ids+=("$id")
  done
  echo "${ids[*]}"
}

probe() { # PORT -> broker ids, or non-zero
  timeout 3 "$BASH" "$SELF" __probe "$1" 2>/dev/null
}

# Node N is ready when its broker port answers Metadata listing every node in WANT.
node_ready() { # N WANT...
  local n=$1 ids w
  shift
  ids=" $(probe "$(broker_port "$n")") " || return 1
  for w in "$@"; do [[ $ids == *" $w "* ]] || return 1; done
}

# ---------------------------------------------------------------- start

new_cluster_id() { # what kafka.tools.StorageTool random-uuid prints: 16 random bytes, base64url
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* ]] || break
  done
  printf '%s' "$id"
}

write_properties() { # N NODES
  local n=$1 nodes=$2 dir voters="" i rf misr parts
  dir=$(node_dir "$n")
  for ((i = 1; i <= nodes; i++)); do voters+="${voters:+,}$i@$HOST:$(controller_port "$i")"; done
  if ((nodes == 1)); then rf=1 misr=1 parts=1; else rf=3 misr=2 parts=3; fi
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka.sh start: node $n of $nodes, KRaft combined broker+controller.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:$(broker_port "$n"),CONTROLLER://$HOST:$(controller_port "$n")
advertised.listeners=PLAINTEXT://$HOST:$(broker_port "$n")
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$misr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=$parts
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$misr
transaction.state.log.num.partitions=$parts
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$misr
share.coordinator.state.topic.num.partitions=$parts
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
EOF
}

# True when something accepts TCP connections on 127.0.0.1:PORT (no fork).
port_in_use() {
  { exec 4<>"/dev/tcp/$HOST/$1"; } 2>/dev/null || return 1
  exec 4>&-
}

launch_node() { # N NODES LIBS
  local n=$1 nodes=$2 libs=$3 dir heap pid
  dir=$(node_dir "$n")
  if ((nodes == 1)); then heap="-Xms256m -Xmx1g"; else heap="-Xms256m -Xmx512m"; fi
  heap=${JOBCTL_KAFKA_HEAP_OPTS:-$heap}
  # shellcheck disable=SC2086 # heap and extra options are word lists
  "$JAVA" $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$BROKER_LOG4J" -Dkafka.logs.dir="$dir" \
    ${JOBCTL_KAFKA_OPTS:-} -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
    >>"$dir/kafka.log" 2>&1 </dev/null &
  pid=$!
  disown "$pid" # no "Killed" job notices from this shell; the pid file tracks it
  echo "$pid" >"$dir/kafka.pid"
  log "node $n: pid $pid, broker $HOST:$(broker_port "$n"), controller $HOST:$(controller_port "$n"), log $dir/kafka.log"
  wait_exec "$n" "$pid"
}

# Until the background child has exec'd java, /proc/PID/cmdline is still this
# script's, so node_pid (which checks the command line against recycled pids)
# would call a node that is merely slow to start "exited". On a loaded machine
# that window lasted long enough to fail 1 start in 8 with an empty log, and the
# java that then started was left running without a pid file. Wait it out.
wait_exec() { # N PID
  local want deadline=$((SECONDS + 30)) state
  want="$(node_dir "$1")/server.properties"
  while ((SECONDS < deadline)); do
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$2/status" 2>/dev/null) || state=""
    [[ -n $state && $state != Z ]] || return 0 # gone: wait_ready reports it with the log
    node_running "$1" && return 0
    [[ -d /proc/self ]] || return 0 # no procfs: node_pid uses kill -0
    sleep 0.05
  done
  log "warning: node $1 (pid $2) has not started java after 30 s"
}

print_log_tail() { # N
  local f
  f="$(node_dir "$1")/kafka.log"
  log "last lines of $f:"
  tail -n 40 "$f" 2>/dev/null | sed 's/^/    /' >&2 || true
}

# Waits until each node in NODES answers Metadata listing every node in WANT.
# On failure: prints the logs' tails, kills the nodes it was waiting for, exits 1.
wait_ready() { # "NODES..." "WANT..."
  local -a pending want
  read -ra pending <<<"$1"
  read -ra want <<<"$2"
  local deadline=$((SECONDS + START_TIMEOUT)) n rest
  while ((${#pending[@]} > 0)); do
    rest=()
    for n in "${pending[@]}"; do
      if ! node_running "$n"; then
        log "error: node $n exited during startup"
        print_log_tail "$n"
        if ((RETRY_EXITED)); then
          kill_nodes "$1"
          return 2
        fi
        abort_nodes "$@"
      fi
      # Cheap TCP check first: the probe forks a few processes, which would slow
      # the JVMs' start on a small machine if run before the port is even bound.
      port_in_use "$(broker_port "$n")" && node_ready "$n" "${want[@]}" || rest+=("$n")
    done
    pending=("${rest[@]}")
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      log "error: timed out after ${START_TIMEOUT}s waiting for node(s) ${pending[*]} to answer a Metadata request listing brokers ${want[*]}"
      for n in "${pending[@]}"; do print_log_tail "$n"; done
      abort_nodes "$@"
    fi
    sleep 0.2
  done
}

abort_nodes() { # "NODES..." -- kill what we started so nothing is left behind
  kill_nodes "$1"
  log "killed node(s) $1; data and logs are in $RUN_DIR"
  exit 1
}

kill_nodes() { # "NODES..."
  local -a list
  local n pid
  read -ra list <<<"$1"
  for n in "${list[@]}"; do
    if pid=$(node_pid "$n"); then
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone 10 "$n" || true
    fi
    rm -f "$(node_dir "$n")/kafka.pid"
  done
}

# wait_ready returns 2 instead of exiting when a node exits during startup and this
# is set: start retries once, since the cause (a port taken by another process
# between our check and the broker's bind, a JVM killed under memory pressure) is
# usually outside the cluster.
RETRY_EXITED=0

format_cluster() { # NODES LIBS -- fresh data and a new cluster id for every node
  local nodes=$1 libs=$2 n cid tf
  mkdir -p "$RUN_DIR"
  rm -f "$STATE_FILE"
  for n in 1 2 3; do rm -rf "$(node_dir "$n")"; done
  cid=$(new_cluster_id)
  log "Kafka $KAFKA_VERSION, $nodes node(s), cluster id $cid, run dir $RUN_DIR"

  local -a fpids=()
  tf=$(now)
  for ((n = 1; n <= nodes; n++)); do
    mkdir -p "$(node_dir "$n")/data"
    write_properties "$n" "$nodes"
    # A short-lived JVM: C1 only and serial GC start faster.
    "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$libs/*" \
      kafka.tools.StorageTool format -t "$cid" -c "$(node_dir "$n")/server.properties" \
      >"$(node_dir "$n")/format.log" 2>&1 </dev/null &
    fpids+=($!)
  done
  for ((n = 1; n <= nodes; n++)); do
    wait "${fpids[n - 1]}" || {
      sed 's/^/    /' "$(node_dir "$n")/format.log" >&2
      die "formatting storage of node $n failed"
    }
  done
  printf 'nodes=%s\nversion=%s\nlibs=%s\ncluster_id=%s\nbootstrap=%s\n' \
    "$nodes" "$KAFKA_VERSION" "$libs" "$cid" "$(bootstrap_list "$nodes")" >"$STATE_FILE"
  log "formatted storage in $(since "$tf") s"
}

cmd_start() {
  local nodes=1 t0 n p libs
  while (($#)); do
    case $1 in
      --nodes) (($# >= 2)) || die "--nodes needs a value"; nodes=$2; shift 2 ;;
      --nodes=*) nodes=${1#--nodes=}; shift ;;
      *) die "start: unknown argument '$1' (usage: start [--nodes 1|3])" ;;
    esac
  done
  [[ $nodes == 1 || $nodes == 3 ]] || die "--nodes must be 1 or 3, not '$nodes'"
  t0=$(now)
  check_java
  ensure_libs
  libs=$(lib_dir)
  if [[ -n $(running_nodes) ]]; then
    log "a cluster is already running from $RUN_DIR: stopping it first"
    cmd_stop
  fi
  for ((n = 1; n <= nodes; n++)); do
    for p in $(broker_port "$n") $(controller_port "$n"); do
      ! port_in_use "$p" || die "port $HOST:$p is already in use (another Kafka? try: ss -ltnp | grep :$p)"
    done
  done

  local all attempt rc
  all=$(seq -s ' ' 1 "$nodes")
  rm -rf "$RUN_DIR/failed-start"
  for attempt in 1 2; do
    format_cluster "$nodes" "$libs"
    trap 'log "interrupted"; abort_nodes "$all"' INT TERM
    for ((n = 1; n <= nodes; n++)); do launch_node "$n" "$nodes" "$libs"; done
    RETRY_EXITED=$((attempt == 1))
    rc=0
    wait_ready "$all" "$all" || rc=$?
    ((rc == 0)) && break
    ((rc == 2)) || exit "$rc"
    log "retrying the start once (the reason is above); node logs of the failed attempt: $RUN_DIR/failed-start"
    rm -rf "$RUN_DIR/failed-start"
    mkdir -p "$RUN_DIR/failed-start"
    for ((n = 1; n <= nodes; n++)); do cp "$(node_dir "$n")/kafka.log" "$RUN_DIR/failed-start/node-$n.log" 2>/dev/null || true; done
    sleep 2
    for ((n = 1; n <= nodes; n++)); do
      for p in $(broker_port "$n") $(controller_port "$n"); do
        ! port_in_use "$p" || die "port $HOST:$p is in use by another process (try: ss -ltnp | grep :$p)"
      done
    done
  done
  trap - INT TERM
  log "ready in $(since "$t0") s"
  bootstrap_list "$nodes"
  echo
}

# ---------------------------------------------------------------- stop & co

running_nodes() {
  local n
  for n in $(known_nodes); do node_running "$n" && printf '%s ' "$n"; done
  return 0
}

wait_gone() { # SECONDS N... -> returns 1 if some still run after SECONDS
  local limit=$1 deadline n alive
  shift
  deadline=$(($(date +%s) + limit))
  while :; do
    alive=0
    for n in "$@"; do node_running "$n" && alive=1; done
    ((alive == 0)) && return 0
    (($(date +%s) >= deadline)) && return 1
    sleep 0.1
  done
}

cmd_stop() {
  [[ $# -eq 0 ]] || die "stop takes no arguments"
  local -a list
  local n pid t0
  read -ra list <<<"$(running_nodes)"
  if ((${#list[@]} == 0)); then
    for n in $(known_nodes); do rm -f "$(node_dir "$n")/kafka.pid"; done
    log "nothing running from $RUN_DIR"
    return 0
  fi
  t0=$(now)
  for n in "${list[@]}"; do
    if pid=$(node_pid "$n"); then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  if ! wait_gone "$STOP_TIMEOUT" "${list[@]}"; then
    for n in "${list[@]}"; do
      if pid=$(node_pid "$n"); then
        log "node $n (pid $pid) still running after ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
    wait_gone 10 "${list[@]}" || die "could not kill node(s) of $RUN_DIR"
  fi
  for n in $(known_nodes); do rm -f "$(node_dir "$n")/kafka.pid"; done
  log "stopped node(s) ${list[*]} in $(since "$t0") s"
}

node_arg() { # N -> validated against the cluster
  require_state
  if ! [[ ${1:-} =~ ^[1-9]$ ]] || (($1 > NODES)); then die "node must be 1..$NODES, not '${1:-}'"; fi
}

cmd_kill_node() {
  [[ $# -eq 1 ]] || die "usage: kill-node N"
  node_arg "$1"
  local pid
  pid=$(node_pid "$1") || die "node $1 is not running"
  kill -KILL "$pid"
  wait_gone 10 "$1" || die "node $1 (pid $pid) survived SIGKILL"
  rm -f "$(node_dir "$1")/kafka.pid"
  log "killed node $1 (pid $pid)"
}

cmd_start_node() {
  [[ $# -eq 1 ]] || die "usage: start-node N"
  node_arg "$1"
  local n=$1 t0 m p want=()
  ! node_running "$n" || die "node $n is already running"
  [[ -f $(node_dir "$n")/data/meta.properties ]] || die "node $n has no formatted data (run: scripts/kafka.sh start)"
  for p in $(broker_port "$n") $(controller_port "$n"); do
    ! port_in_use "$p" || die "port $HOST:$p is already in use"
  done
  [[ -f $LIBS/kafka_2.13-$CLUSTER_VERSION.jar ]] || die "jars of Kafka $CLUSTER_VERSION are gone from $LIBS (run: KAFKA_VERSION=$CLUSTER_VERSION scripts/kafka.sh fetch)"
  check_java
  t0=$(now)
  launch_node "$n" "$NODES" "$LIBS"
  # Ready when it lists itself and every other running node.
  for m in $(running_nodes); do want+=("$m"); done
  trap 'log "interrupted"; abort_nodes "$n"' INT TERM
  wait_ready "$n" "${want[*]}"
  trap - INT TERM
  log "node $n ready in $(since "$t0") s"
  bootstrap_list "$NODES"
  echo
}

cmd_status() {
  [[ $# -eq 0 ]] || die "status takes no arguments"
  if ! read_state; then
    echo "no cluster in $RUN_DIR"
    return 1
  fi
  local n pid ids ok=0
  echo "Kafka $CLUSTER_VERSION, $NODES node(s), run dir $RUN_DIR, bootstrap $(bootstrap_list "$NODES")"
  for ((n = 1; n <= NODES; n++)); do
    if pid=$(node_pid "$n"); then
      if ids=$(probe "$(broker_port "$n")"); then
        echo "node $n: running (pid $pid), $HOST:$(broker_port "$n") answers; brokers seen: ${ids:-none}"
      else
        echo "node $n: running (pid $pid), $HOST:$(broker_port "$n") not answering"
        ok=1
      fi
    else
      echo "node $n: stopped"
      ok=1
    fi
  done
  return "$ok"
}

cmd_logs() {
  local follow=0 lines=200 n=""
  while (($#)); do
    case $1 in
      -f) follow=1; shift ;;
      -n) (($# >= 2)) || die "-n needs a value"; lines=$2; shift 2 ;;
      [1-9]) n=$1; shift ;;
      *) die "usage: logs [-f] [-n LINES] [N]" ;;
    esac
  done
  local -a files=()
  if [[ -n $n ]]; then
    files=("$(node_dir "$n")/kafka.log")
  else
    for n in $(known_nodes); do files+=("$(node_dir "$n")/kafka.log"); done
  fi
  if ((${#files[@]} == 0)) || [[ ! -f ${files[0]} ]]; then die "no logs in $RUN_DIR"; fi
  if ((follow)); then
    exec tail -n "$lines" -F "${files[@]}"
  fi
  tail -n "$lines" "${files[@]}"
}

cmd_run_class() {
  (($# >= 1)) || die "usage: run-class CLASS [ARGS...]"
  check_java
  ensure_libs
  # shellcheck disable=SC2086 # heap and extra options are word lists
  exec "$JAVA" ${JOBCTL_KAFKA_TOOL_HEAP_OPTS:--Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$TOOLS_LOG4J" ${JOBCTL_KAFKA_TOOL_OPTS:-} \
    -cp "$(lib_dir)/*" "$@"
}

main() {
  (($#)) || {
    usage >&2
    exit 2
  }
  local cmd=$1
  shift
  case $cmd in
    -h | --help | help) usage ;;
    fetch) cmd_fetch "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill-node) cmd_kill_node "$@" ;;
    start-node) cmd_start_node "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    run-class) cmd_run_class "$@" ;;
    __probe) cmd_probe "$@" ;;
    __fetch-locked) do_fetch ;;
    *)
      log "unknown command '$cmd'"
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
