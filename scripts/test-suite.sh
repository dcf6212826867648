#!/usr/bin/env bash
# The suite `make test` runs once everything it needs is installed (`make flakes` runs it N times):
#   1. tests/ in parallel pytest-xdist workers, each test module on one worker (module fixtures such as the
#      one-node swarm of tests/test_swarm.py stay whole);
#   2. the conformance suite against batchemu's Docker executor, --executor swarm and --executor simulate side
#      by side, on one engine made a one-node swarm for the run (each run has its own server, queues and
#      capacity; on simulate, the scenarios about what a command did skip, saying so).
#
#   bash scripts/test-suite.sh [REPORT_DIR]   # REPORT_DIR: a JUnit report of each part (tests, conformance-*)
#
# Environment: VENV (default .venv), WORKERS (pytest-xdist workers for tests/, default 3; 0 runs them in
# one process), PYTEST_ARGS (extra pytest arguments for every part).
# Exit status: 0 when every part passed, else 1; every part runs either way.
set -uo pipefail
cd "$(dirname "$0")/.."

venv="${VENV:-.venv}"
workers="${WORKERS:-3}"
reports="${1:-}"
out="build/test-suite"
mkdir -p "$out" ${reports:+"$reports"}
status=0

say() { echo "test-suite: $*" >&2; }
junit() { [ -z "$reports" ] || echo "--junitxml=$reports/$1.xml"; }

began=$SECONDS
parallel=()
[ "$workers" = 0 ] || parallel=(-n "$workers" --dist loadfile)
# shellcheck disable=SC2046,SC2086
"$venv/bin/python" -m pytest -q -p no:cacheprovider -rs "${parallel[@]}" $(junit tests) ${PYTEST_ARGS:-} tests \
    || status=1
say "tests/ took $((SECONDS - began)) s"

began=$SECONDS
made_swarm=0
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = inactive ]; then
    docker network inspect docker_gwbridge >/dev/null 2>&1 && had_gwbridge=1 || had_gwbridge=0
    docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null && made_swarm=1
fi
OUT="$out/conformance-batchemu" PYTEST_ARGS="$(junit conformance-batchemu) ${PYTEST_ARGS:-}" \
    bash scripts/conformance.sh batchemu >"$out/conformance-batchemu.log" 2>&1 &
docker_run=$!
OUT="$out/conformance-swarm" PYTEST_ARGS="$(junit conformance-swarm) ${PYTEST_ARGS:-}" \
    bash scripts/conformance.sh swarm >"$out/conformance-swarm.log" 2>&1 &
swarm_run=$!
OUT="$out/conformance-simulate" PYTEST_ARGS="$(junit conformance-simulate) ${PYTEST_ARGS:-}" \
    bash scripts/conformance.sh simulate >"$out/conformance-simulate.log" 2>&1 &
simulate_run=$!
wait "$docker_run" || status=1
wait "$swarm_run" || status=1
wait "$simulate_run" || status=1
for part in batchemu swarm simulate; do
    say "conformance against $part:"
    cat "$out/conformance-$part.log"
done
if [ "$made_swarm" = 1 ]; then
    docker swarm leave --force >/dev/null 2>&1 || true
    [ "$had_gwbridge" = 1 ] || docker network rm docker_gwbridge >/dev/null 2>&1 || true
fi
say "conformance (three executors side by side) took $((SECONDS - began)) s"
exit $status
