#!/usr/bin/env bash
# Runs the endpoint-agnostic conformance suite (conformance/) and prints the operation coverage table.
#
#   bash scripts/conformance.sh batchemu   # start batchemu on a free port, run the suite, print the table
#   bash scripts/conformance.sh compare    # also run it against a moto server (in .venv-moto), two columns
#   bash scripts/conformance.sh simulate   # the suite against batchemu --executor simulate (no containers)
#   bash scripts/conformance.sh swarm      # the suite against batchemu --executor swarm on a one-node swarm of
#                                          # the local engine: made for the run and left after it, unless the
#                                          # engine was a swarm member already (that swarm is left alone)
#
# Environment: VENV (default .venv), OUT (default build/conformance), PYTEST_ARGS (extra pytest args).
# Exit status: the batchemu run's pytest status (compare mode too; moto's failures are information).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-batchemu}"
venv="${VENV:-.venv}"
out="${OUT:-build/conformance}"
py="$venv/bin/python"
mkdir -p "$out"
pids=()
made_swarm=0
had_gwbridge=1

say() { echo "conformance: $*" >&2; }
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [ "$made_swarm" = 1 ]; then
        say "leaving the one-node swarm made for this run"
        docker swarm leave --force >/dev/null 2>&1 || true
        # swarm init made docker_gwbridge when the engine had none: take it away again.
        [ "$had_gwbridge" = 1 ] || docker network rm docker_gwbridge >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_http() {  # wait_http URL NAME PID
    for _ in $(seq 1 150); do
        if "$py" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then
            return 0
        fi
        kill -0 "$3" 2>/dev/null || { say "$2 exited before answering; see its log in $out"; return 1; }
        sleep 0.2
    done
    say "$2 did not answer $1 within 30 s"; return 1
}

# run_suite LABEL URL JSON [pytest args...]: the batchemu plugin is disabled so the suite only talks HTTP.
run_suite() {
    local label="$1" url="$2" json="$3"; shift 3
    say "running the suite against $label at $url"
    set +e
    "$py" -m pytest conformance -p no:batchemu -p no:cacheprovider -q -rs --timeout 600 \
        --endpoint "$url" --coverage-json "$json" --coverage-label "$label" "$@" ${PYTEST_ARGS:-}
    local status=$?
    set -e
    return $status
}

# ensure_swarm: make the local engine a one-node swarm manager for this run unless it is in a swarm already.
ensure_swarm() {
    local state
    state="$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')"
    case "$state" in
        "inactive "*)
            docker network inspect docker_gwbridge >/dev/null 2>&1 || had_gwbridge=0
            docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null
            made_swarm=1
            say "made a one-node swarm on the local engine" ;;
        "active true") say "the local engine is a swarm manager already: using that swarm, leaving it alone" ;;
        *) say "the local engine is a swarm member but not a manager ($state): cannot run jobs on it"; return 1 ;;
    esac
}

start_batchemu() {  # start_batchemu [serve flags...]
    local port state
    port="$(free_port)"
    state="$(mktemp -d)/state.sqlite3"
    "$venv/bin/batchemu" serve --port "$port" --state "$state" "$@" >"$out/batchemu.log" 2>&1 &
    pids+=("$!")
    BATCHEMU_URL="http://127.0.0.1:$port"
    wait_http "$BATCHEMU_URL/_batchemu/health" batchemu "$!"
}

start_moto() {
    local port
    if [ ! -x .venv-moto/bin/moto_server ]; then
        say "creating .venv-moto with moto[server]"
        python3 -m venv .venv-moto
        .venv-moto/bin/pip install --quiet 'moto[server]' >"$out/moto-install.log" 2>&1 \
            || { say "installing moto failed; see $out/moto-install.log"; return 1; }
    fi
    port="$(free_port)"
    .venv-moto/bin/moto_server -p "$port" >"$out/moto.log" 2>&1 &
    pids+=("$!")
    MOTO_URL="http://127.0.0.1:$port"
    wait_http "$MOTO_URL/moto-api/" moto "$!"
}

case "$mode" in
    batchemu)
        start_batchemu
        status=0
        run_suite batchemu "$BATCHEMU_URL" "$out/batchemu.json" || status=$?
        # COVERAGE_PAGE=docs/coverage.md (make conformance) writes the table into that page between its markers.
        "$py" scripts/coverage_table.py "$out/batchemu.json" ${COVERAGE_PAGE:+--write "$COVERAGE_PAGE"} \
            | tee "$out/coverage.md"
        exit $status
        ;;
    simulate)
        start_batchemu --executor simulate
        status=0
        run_suite batchemu-simulate "$BATCHEMU_URL" "$out/batchemu-simulate.json" || status=$?
        exit $status
        ;;
    swarm)
        ensure_swarm
        start_batchemu --executor swarm
        status=0
        run_suite batchemu-swarm "$BATCHEMU_URL" "$out/batchemu-swarm.json" || status=$?
        exit $status
        ;;
    compare)
        start_batchemu
        start_moto
        # Both runs record shape violations without failing, so the columns compare behaviour; the
        # table's last row counts the violations. moto checks IAM and EC2 references: make real ones.
        status=0
        run_suite batchemu "$BATCHEMU_URL" "$out/batchemu.json" --lenient-shapes || status=$?
        # shellcheck disable=SC2046
        run_suite moto "$MOTO_URL" "$out/moto.json" --lenient-shapes \
            $("$py" -m conformance.prepare_endpoint "$MOTO_URL") || true
        "$py" scripts/coverage_table.py "$out/batchemu.json" "$out/moto.json" \
            ${COMPARE_OUT:+--write "$COMPARE_OUT"} | tee "$out/coverage-compare.md"
        exit $status
        ;;
    *)
        echo "usage: $0 batchemu|simulate|swarm|compare" >&2
        exit 2
        ;;
esac
