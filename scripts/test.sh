#!/usr/bin/env bash
# The one test command: sets up what the tests need and runs every test.
#
#   scripts/test.sh            # everything: unit, fuzz (short), and the integration
#                              # suite against the embedded broker AND real Apache Kafka
#
# Environment:
#   CI=true                    every target and tool is mandatory: a missing one fails
#                              the run instead of being skipped (as on a developer box)
#   JOBCTL_TEST_BROKERS=h:p    use this running cluster as the real-Kafka target instead
#                              of starting one with scripts/kafka.sh
#   JOBCTL_TEST_REAL_KAFKA=0   skip the real-Kafka target (not allowed with CI=true)
#   JOBCTL_TEST_CLUSTER=1      run the three-node broker-loss test (set when this script
#                              starts Kafka itself; needs Java 17 + Maven)
#   JOBCTL_TEST_ARTIFACTS=dir  where screenshots and logs are kept (default test/out)
#   FUZZTIME=10s               how long each fuzzer runs
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ci=${CI:-false}
export JOBCTL_TEST_ARTIFACTS=${JOBCTL_TEST_ARTIFACTS:-$root/test/out}
mkdir -p "$JOBCTL_TEST_ARTIFACTS"
log() { printf '\n==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }
start=$(date +%s)

# --- tools the interop and browser tests use ---------------------------------
need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${need_apt[*]} (apt)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  elif [ "$ci" = true ]; then
    die "need ${need_apt[*]} and cannot install them (not root or no apt-get)"
  else
    echo "NOTE: ${need_apt[*]} missing: the tests that need them will be skipped"
  fi
fi
if ! python3 -c 'import confluent_kafka' >/dev/null 2>&1; then
  log "installing confluent-kafka (pip)"
  python3 -m pip install --quiet --disable-pip-version-check confluent-kafka \
    || { [ "$ci" = true ] && die "pip install confluent-kafka failed"; echo "NOTE: confluent-kafka missing: its interop test will be skipped"; }
fi

# --- static checks -------------------------------------------------------------
log "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
[ -z "$unformatted" ] || die "gofmt would change: $unformatted"
go vet ./...

# --- real Apache Kafka ---------------------------------------------------------
started_kafka=false
cleanup() {
  if $started_kafka; then scripts/kafka.sh stop >&2 || true; fi
}
trap cleanup EXIT
if [ -z "${JOBCTL_TEST_BROKERS:-}" ] && [ "${JOBCTL_TEST_REAL_KAFKA:-1}" != 0 ]; then
  if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
    log "starting Apache Kafka (scripts/kafka.sh)"
    scripts/kafka.sh stop >/dev/null 2>&1 || true
    t0=$(date +%s)
    JOBCTL_TEST_BROKERS=$(scripts/kafka.sh start)
    started_kafka=true
    export JOBCTL_TEST_BROKERS
    # The broker-loss test starts its own three-node cluster on other ports.
    export JOBCTL_TEST_CLUSTER=1
    echo "Apache Kafka ready at $JOBCTL_TEST_BROKERS after $(( $(date +%s) - t0 ))s (including jar fetch if not cached)"
  elif [ "$ci" = true ]; then
    die "Java 17 and Maven are required in CI for the real Kafka target"
  else
    echo "NOTE: no java/mvn: SKIPPING the real Kafka target"
  fi
fi
[ "$ci" = true ] && [ -z "${JOBCTL_TEST_BROKERS:-}" ] && die "CI requires the real Kafka target"

# --- tests -----------------------------------------------------------------------
log "unit tests (go test -race)"
go test -race -count=1 $(go list ./... | grep -v /test/)

log "fuzzing the job decoder (and its fast path against encoding/json) and POST /jobs for ${FUZZTIME:-10s} each"
go test -run '^$' -fuzz 'FuzzDecode$' -fuzztime "${FUZZTIME:-10s}" ./pkg/job
go test -run '^$' -fuzz FuzzFastParseMatchesUnmarshal -fuzztime "${FUZZTIME:-10s}" ./pkg/job
go test -run '^$' -fuzz FuzzPostJobs -fuzztime "${FUZZTIME:-10s}" ./pkg/api

log "integration suite against: embedded${JOBCTL_TEST_BROKERS:+ and Apache Kafka at $JOBCTL_TEST_BROKERS}"
set +e
go test -race -count=1 -parallel 1 -timeout 60m -v ./test/integration/ >"$JOBCTL_TEST_ARTIFACTS/integration.log" 2>&1
rc=$?
set -e
# Show every test and subtest result (the /embedded and /kafka targets), and
# the full log of failures.
grep -E '^(integration:|runtime:|\s*--- (PASS|FAIL|SKIP)|PASS$|FAIL|ok |panic:)|screenshot:|failure_test.go|SKIP' "$JOBCTL_TEST_ARTIFACTS/integration.log" || true
if [ $rc != 0 ]; then
  echo "---- integration log (tail) ----"
  tail -n 300 "$JOBCTL_TEST_ARTIFACTS/integration.log"
  die "integration suite failed (full log: $JOBCTL_TEST_ARTIFACTS/integration.log)"
fi
log "all tests passed in $(( $(date +%s) - start ))s"
