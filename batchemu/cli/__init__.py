"""The `batchemu` command line: `serve` (batchemu.cli.serve), the client commands of batchemu.cli.commands,
`fault` (batchemu.cli.fault) and `events` (batchemu.cli.events_command)."""

from __future__ import annotations

import argparse
import sys

from batchemu import __version__
from batchemu.cli import commands as client_commands
from batchemu.cli.events_command import add_events_command
from batchemu.cli.fault import add_fault_command, run_fault_command
from batchemu.cli.serve import add_serve_command, run_serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batchemu", description="A local emulator of AWS Batch.")
    parser.add_argument("--version", action="version", version=f"batchemu {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_command(commands)
    # Each further subcommand module adds its parsers here.
    client_commands.register(commands)
    add_fault_command(commands)
    add_events_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ValueError as exc:  # a malformed BATCHEMU_* variable: never serve with less than was asked for
        print(f"batchemu: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command == "fault":
        return run_fault_command(args)
    if getattr(args, "run", None) is not None:
        return args.run(args)
    return run_serve(args)

