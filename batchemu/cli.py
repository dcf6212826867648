"""`batchemu serve`: the command-line entry point."""

from __future__ import annotations

import argparse
import logging
import sys

from batchemu import __version__
from batchemu.config import Config, default_state_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batchemu", description="A local emulator of AWS Batch.")
    parser.add_argument("--version", action="version", version=f"batchemu {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
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
    serve.add_argument("--no-scheduler", action="store_true",
                       help="serve the API only; never start containers")
    serve.add_argument("--verbose", "-v", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("urllib3").setLevel(logging.INFO)
        logging.getLogger("docker").setLevel(logging.INFO)
    config = Config(host=args.host, port=args.port, state=args.state or default_state_path(),
                    region=args.region, account_id=args.account_id, state_dwell=args.state_dwell,
                    keep_containers=args.keep_containers, network=args.network,
                    scale_down_delay=args.scale_down_delay, deny_privileged=args.deny_privileged,
                    deny_host_volumes=args.deny_host_volumes)
    if not config.is_loopback():
        print(f"WARNING: binding to {config.host}: anyone who can reach this address can start containers "
              "on this machine's Docker Engine, which is root-equivalent.", file=sys.stderr)
    from batchemu.server import Server
    from batchemu.store import StateError
    try:
        server = Server(config, with_scheduler=not args.no_scheduler)
    except StateError as exc:
        print(f"batchemu: {exc}", file=sys.stderr)
        return 2
    print(f"batchemu {__version__} listening on {server.url} (state: {config.state})", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
