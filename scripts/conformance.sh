#!/usr/bin/env bash
# Runs the endpoint-agnostic conformance suite (conformance/) and prints the operation coverage table.
#
#   bash scripts/conformance.sh batchemu   # start batchemu on a free port, run the suite, print the table
#   bash scripts/conformance.sh compare    # also run it against a moto server (in .venv-moto), two columns
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

say() { echo "conformance: $*" >&2; }
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
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
    "$py" -m pytest conformance -p no:batchemu -p no:cacheprovider -q -rs --timeout 300 \
        --endpoint "$url" --coverage-json "$json" --coverage-label "$label" "$@" ${PYTEST_ARGS:-}
    local status=$?
    set -e
    return $status
}

start_batchemu() {
    local port state
    port="$(free_port)"
    state="$(mktemp -d)/state.sqlite3"
    "$venv/bin/batchemu" serve --port "$port" --state "$state" >"$out/batchemu.log" 2>&1 &
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
        # COVERAGE_README=README.md (make conformance) writes the table into the README's coverage section.
        "$py" scripts/coverage_table.py "$out/batchemu.json" ${COVERAGE_README:+--write "$COVERAGE_README"} \
            | tee "$out/coverage.md"
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
        echo "usage: $0 batchemu|compare" >&2
        exit 2
        ;;
esac
