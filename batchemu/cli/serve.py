"""`batchemu serve`: its options, and a server built from them that serves until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from batchemu import __version__
from batchemu.config import Config, default_state_path, parse_credentials, parse_image_map


def _auth_pair(text: str) -> dict[str, str]:
    try:
        return parse_credentials(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _image_map_entry(text: str) -> dict[str, str]:
    try:
        return parse_image_map(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    """The `serve` subcommand and its options, each with its BATCHEMU_* default where it has one."""
    serve = commands.add_parser("serve", help="serve the AWS Batch API and run jobs on the local Docker Engine")
    defaults = Config()
    serve.add_argument("--host", default=defaults.host,
                       help="address to bind (default 127.0.0.1; anything else exposes a root-equivalent API)")
    serve.add_argument("--port", type=int, default=defaults.port, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--state", default=None,
                       help=f"SQLite file holding all state, or :memory: (default {default_state_path()})")
    serve.add_argument("--region", default=defaults.region, help="region named in every ARN")
    serve.add_argument("--account-id", default=defaults.account_id, help="account id named in every ARN")
    serve.add_argument("--state-dwell", type=float, default=defaults.state_dwell,
                       help="minimum seconds a job spends in each state (default 0)")
    serve.add_argument("--scale-down-delay", type=float, default=defaults.scale_down_delay, metavar="SECONDS",
                       help="seconds before a managed compute environment's unused desiredvCpus scale in "
                            "(default: scalingPolicy.minScaleDownDelayMinutes, else 60; caps the policy)")
    serve.add_argument("--keep-containers", action="store_true", default=defaults.keep_containers,
                       help="keep finished job containers for debugging instead of removing them")
    serve.add_argument("--network", default=defaults.network,
                       help="Docker network for job containers (default host, so jobs reach this server)")
    serve.add_argument("--deny-privileged", action="store_true", default=defaults.deny_privileged,
                       help="refuse job definitions with privileged containers or host devices")
    serve.add_argument("--deny-host-volumes", action="store_true", default=defaults.deny_host_volumes,
                       help="refuse job definitions with host-path volumes")
    serve.add_argument("--auth", action="append", type=_auth_pair, metavar="ACCESS_KEY:SECRET",
                       help="require requests signed (AWS SigV4) with this key; repeatable (default: "
                            "$BATCHEMU_AUTH, comma-separated pairs; unset: no authentication)")
    from batchemu.executors.registry import EXECUTORS
    serve.add_argument("--executor", choices=sorted(EXECUTORS), default=defaults.executor,
                       help="what runs attempts: docker (containers) or simulate (no Docker: each attempt "
                            "runs --simulate-seconds and exits 0 unless its environment says otherwise); "
                            "default $BATCHEMU_EXECUTOR, else docker")
    serve.add_argument("--simulate-seconds", type=float, default=defaults.simulate_seconds, metavar="SECONDS",
                       help="how long a simulated attempt runs (default 0.2; a job's BATCHEMU_SIMULATE_SECONDS "
                            "wins)")
    serve.add_argument("--image-map", action="append", type=_image_map_entry, metavar="FROM=TO",
                       help="run the local image TO when a job names FROM; repeatable (default: "
                            "$BATCHEMU_IMAGE_MAP, comma-separated)")
    serve.add_argument("--s3-map", action="append", type=_image_map_entry, metavar="S3_PREFIX=FOLDER",
                       help="read and write S3 URIs under S3_PREFIX (training channels, S3OutputPath) in the "
                            "local FOLDER; repeatable (default: $BATCHEMU_S3_MAP, comma-separated)")
    serve.add_argument("--training-dir", default="", metavar="PATH",
                       help="folder of service jobs' training files and models (default: "
                            "$BATCHEMU_TRAINING_DIR, else training/ beside the state file)")
    serve.add_argument("--cpu", default=os.environ.get("BATCHEMU_CPU", "auto"), metavar="N|auto|all",
                       help="the CPU the server's threads run on: auto (default $BATCHEMU_CPU, else auto) picks "
                            "the last one it may use, all lets them move between every CPU")
    serve.add_argument("--dashboard-read-only", action="store_true", default=defaults.dashboard_read_only,
                       help="show the dashboard without its Cancel and Terminate buttons, and refuse them "
                            "(default $BATCHEMU_DASHBOARD_READ_ONLY=1)")
    serve.add_argument("--events-endpoint", default=defaults.events_endpoint, metavar="URL",
                       help="send Batch's events with PutEvents to the EventBridge at URL (moto's or LocalStack's; "
                            "default $BATCHEMU_EVENTS_ENDPOINT, else none)")
    serve.add_argument("--events-bus", default=defaults.events_bus, metavar="NAME",
                       help="the event bus of --events-endpoint (default $BATCHEMU_EVENTS_BUS, else default)")
    serve.add_argument("--events-kept", type=int, default=defaults.events_kept, metavar="N",
                       help="events kept for GET /_batchemu/events and `batchemu events` (default "
                            "$BATCHEMU_EVENTS_KEPT, else 10000; undelivered ones are always kept)")
    serve.add_argument("--no-scheduler", action="store_true",
                       help="serve the API only; never start containers")
    serve.add_argument("--verbose", "-v", action="store_true", help="log every request")


def pin_to_one_cpu(choice: str) -> int | None:
    """Keep the server's threads (all started after this) on one CPU; the one chosen, or None for all.

    Its Python code runs one thread at a time anyway (the GIL), but it lets go of the GIL around every SQLite
    step and socket call, and a thread waiting on another CPU then takes it over: on this project's 2-core
    machine, threads on one CPU served the same requests with 35-60% less CPU than threads free to move, at the same or
    a higher rate (SubmitJob, DescribeJobs, ListJobs in the bench; README, Benchmarks)."""
    if choice == "all" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if choice == "auto":
        if len(allowed) < 2:
            return None
        cpu = allowed[-1]  # CPU 0 takes more of the machine's interrupts
    elif choice.isdigit() and int(choice) in allowed:
        cpu = int(choice)
    else:
        raise ValueError(f"{choice!r} is not auto, all or one of the CPUs this process may use "
                         f"({', '.join(map(str, allowed))})")
    os.sched_setaffinity(0, {cpu})
    return cpu


def run_serve(args: argparse.Namespace) -> int:
    """Serve as `args` say until SIGINT or SIGTERM; the exit status (2 for a setting it cannot serve with)."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("urllib3").setLevel(logging.INFO)
        logging.getLogger("docker").setLevel(logging.INFO)
    config = Config(host=args.host, port=args.port, state=args.state or default_state_path(),
                    region=args.region, account_id=args.account_id, state_dwell=args.state_dwell,
                    keep_containers=args.keep_containers, network=args.network,
                    scale_down_delay=args.scale_down_delay, deny_privileged=args.deny_privileged,
                    deny_host_volumes=args.deny_host_volumes, executor=args.executor,
                    simulate_seconds=args.simulate_seconds, training_dir=args.training_dir,
                    dashboard_read_only=args.dashboard_read_only,
                    events_endpoint=args.events_endpoint, events_bus=args.events_bus, events_kept=args.events_kept)
    if args.s3_map:
        config.s3_map = {source: target for entries in args.s3_map for source, target in entries.items()}
    if args.image_map:
        config.image_map = {source: target for entries in args.image_map for source, target in entries.items()}
    if args.auth:
        config.auth = {key: secret for pairs in args.auth for key, secret in pairs.items()}
    if not config.is_loopback():
        who = "anyone holding a configured key" if config.auth else "anyone who can reach this address"
        print(f"WARNING: binding to {config.host}: {who} can start containers on this machine's Docker "
              "Engine, which is root-equivalent.", file=sys.stderr)
    try:
        cpu = pin_to_one_cpu(args.cpu)
    except ValueError as exc:
        print(f"batchemu: --cpu: {exc}", file=sys.stderr)
        return 2
    from batchemu.http.server import Server
    from batchemu.store import StateError
    try:
        server = Server(config, with_scheduler=not args.no_scheduler)
    except StateError as exc:
        print(f"batchemu: {exc}", file=sys.stderr)
        return 2
    auth = f"SigV4 required, {len(config.auth)} key(s)" if config.auth else "none"
    print(f"batchemu {__version__} listening on {server.url} (state: {config.state}; authentication: {auth})",
          flush=True)
    # The dashboard has no sign-in: with --auth every page needs a signed request, which browsers cannot make.
    dashboard = "off for browsers while --auth is set" if config.auth else f"{server.url}/"
    if config.dashboard_read_only and not config.auth:
        dashboard += " (read-only)"
    print(f"dashboard: {dashboard}", flush=True)
    print(f"cpu: {'every CPU it may use' if cpu is None else cpu} (--cpu)", flush=True)
    server.serve_forever()
    return 0
