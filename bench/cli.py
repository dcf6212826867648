"""`python -m bench [--only latency,capacity,api,scale,arrays,load,soak] [--quick] [--moto]`."""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from bench import api, arrays, capacity, latency, load, scale, soak
from bench.report import RESULTS, Report, machine
from bench.servers import moto_venv

SUITES = ("latency", "capacity", "api", "scale", "arrays", "load", "soak")
# soak runs for most of an hour: only when asked for by name.
DEFAULT = ("latency", "capacity", "api", "scale", "arrays", "load")
NEEDS_DOCKER = ("latency", "capacity", "arrays", "soak")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks of batchemu (bench/README.md)")
    parser.add_argument("--only", default=",".join(DEFAULT),
                        help=f"comma-separated suites to run, of {','.join(SUITES)} (default {','.join(DEFAULT)})")
    parser.add_argument("--quick", action="store_true", help="fewer jobs and shorter phases (under 2 minutes)")
    parser.add_argument("--moto", action="store_true",
                        help="compare with moto, creating .venv-moto with moto[server] if it does not exist")
    parser.add_argument("--moto-venv", default=None,
                        help="virtual environment holding moto_server (default .venv-moto in the repo root)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SUITES)
    if unknown:
        print(f"unknown suite(s): {', '.join(sorted(unknown))}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    report = Report()
    described = machine()
    print(f"machine: {described['cpu']}, {described['cores']} cores, kernel {described['kernel']}, "
          f"Python {described['python']}, Docker {described['docker'] or 'unreachable'}", flush=True)
    failed = []
    for suite in chosen:
        began = time.monotonic()
        print(f"== {suite}", flush=True)
        if suite in NEEDS_DOCKER and not described["docker"]:
            report.note(f"{suite}: not run: the Docker Engine does not answer (`make docker` starts it)")
            failed.append(suite)
            continue
        try:
            if suite == "api":
                venv, why = moto_venv(args.moto_venv, args.moto)
                if why:
                    report.note(why)
                api.run(report, args.quick, venv)
            else:
                suites = {"latency": latency, "capacity": capacity, "scale": scale, "arrays": arrays, "load": load,
                          "soak": soak}
                suites[suite].run(report, args.quick)
        except Exception:  # noqa: BLE001 -- one broken suite must not hide the others' results
            traceback.print_exc()
            report.note(f"{suite}: ERROR (traceback above)")
            failed.append(suite)
        print(f"== {suite} took {time.monotonic() - began:.0f} s", flush=True)
    report.write()
    print()
    print(report.table())
    print(f"\nwritten to {RESULTS}")
    missed = [m.name for m in report.measurements if m.passed is False]
    return 1 if failed or missed else 0
