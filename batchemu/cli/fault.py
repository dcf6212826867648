"""`batchemu fault JOB_ID FAULT`: inject a fault into a running server through POST /_batchemu/faults."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

FAULTS = ("spot-reclaim", "oom", "host-failure", "pull-failure")
FAULTS_PATH = "/_batchemu/faults"
DEFAULT_ENDPOINT = "http://127.0.0.1:8000"


def default_endpoint() -> str:
    """As the AWS CLI chooses it: the Batch-specific variable, then the global one, then batchemu's port."""
    return os.environ.get("AWS_ENDPOINT_URL_BATCH") or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT


def add_fault_command(commands) -> None:
    fault = commands.add_parser(
        "fault", help="inject a fault into a job of a running server",
        description="End the job's running attempt as AWS ends it on that event (spot-reclaim, host-failure: "
                    "the host is lost; oom: exit 137 OutOfMemoryError), or fail its next start (pull-failure).")
    fault.add_argument("job_id", metavar="JOB_ID")
    fault.add_argument("fault", choices=FAULTS)
    fault.add_argument("--endpoint-url", default=None,
                       help=f"the server (default $AWS_ENDPOINT_URL_BATCH, else $AWS_ENDPOINT_URL, else "
                            f"{DEFAULT_ENDPOINT})")


def signed_headers(url: str, body: bytes, method: str = "POST") -> dict[str, str]:
    """Headers with a SigV4 signature when credentials are configured (a server run with --auth needs it)."""
    headers = {"Content-Type": "application/json"} if method == "POST" else {}
    try:
        import botocore.session
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
    except ImportError:
        return headers
    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        return headers
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials, "batch", session.get_config_variable("region") or "us-east-1").add_auth(request)
    return dict(request.headers.items())


def run_fault_command(args: argparse.Namespace) -> int:
    url = (args.endpoint_url or default_endpoint()).rstrip("/") + FAULTS_PATH
    body = json.dumps({"jobId": args.job_id, "fault": args.fault}).encode()
    request = urllib.request.Request(url, data=body, headers=signed_headers(url, body), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        answer = exc.read().decode(errors="replace")
        try:
            message = json.loads(answer).get("message", answer)
        except (ValueError, AttributeError):
            message = answer
        print(f"batchemu fault: {exc.code} {message}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"batchemu fault: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
