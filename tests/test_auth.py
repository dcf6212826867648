"""Opt-in request authentication (--auth / BATCHEMU_AUTH): AWS SigV4 on Batch and on CloudWatch Logs."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from batchemu import cli
from batchemu.config import Config, parse_credentials
from tests.test_clients import AWS_CLI

KEYS = {"AKIDALICE": "alice/secret+1", "AKIDBOB": "bob:secret"}
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)


@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, auth=dict(KEYS))


def client(
    server, service: str, key: str = "AKIDALICE", secret: str | None = None, region: str = "eu-west-3"
):
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=KEYS.get(key, "x") if secret is None else secret,
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def call(server, service: str, **kwargs) -> dict:
    """Make one harmless read with a client built from `kwargs`; the error response when it is refused."""
    try:
        if service == "batch":
            client(server, service, **kwargs).describe_job_queues()
        else:
            client(server, service, **kwargs).describe_log_groups()
    except ClientError as exc:
        return {
            "code": exc.response["Error"]["Code"],
            "message": exc.response["Error"]["Message"],
            "status": exc.response["ResponseMetadata"]["HTTPStatusCode"],
            "type": exc.response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-errortype"),
        }
    return {}


# Batch (rest-json) refuses with 403, as its front door does; the awsJson services refuse with 400.
STATUS = {"batch": 403, "logs": 400}


def test_requests_signed_with_any_configured_key_and_region_are_served(batchemu_server):
    batch = client(batchemu_server, "batch", "AKIDBOB", region="ap-south-1")
    arn = batch.create_scheduling_policy(name="signed", tags={"x&y=z": "1", "keep": "2"})["arn"]
    batch.tag_resource(resourceArn=arn, tags={"team": "a/b c"})  # the ARN travels in the signed path
    batch.untag_resource(resourceArn=arn, tagKeys=["x&y=z", "team"])  # and the keys in the signed query
    assert batch.list_tags_for_resource(resourceArn=arn)["tags"] == {"keep": "2"}
    logs = client(batchemu_server, "logs", "AKIDALICE")
    logs.create_log_group(logGroupName="/team/signed")
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/team/signed"]


@pytest.mark.parametrize("service", ["batch", "logs"])
def test_a_wrong_secret_is_an_invalid_signature(batchemu_server, service):
    assert call(batchemu_server, service, secret="alice/secret+2") == {
        "code": "InvalidSignatureException",
        "message": BAD_SIGNATURE,
        "status": STATUS[service],
        "type": "InvalidSignatureException",
    }


@pytest.mark.parametrize("service", ["batch", "logs"])
def test_an_unknown_access_key_is_an_unrecognized_client(batchemu_server, service):
    assert call(batchemu_server, service, key="AKIDMALLORY", secret="alice/secret+1") == {
        "code": "UnrecognizedClientException",
        "message": "The security token included in the request is invalid.",
        "status": STATUS[service],
        "type": "UnrecognizedClientException",
    }


def raw_post(url: str, body: bytes, headers: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_an_unsigned_request_is_missing_its_authentication_token(batchemu_server):
    status, headers, body = raw_post(
        batchemu_server.url + "/v1/describejobqueues", b"{}", {"Content-Type": "application/json"}
    )
    assert (status, headers["x-amzn-ErrorType"], body) == (
        403,
        "MissingAuthenticationTokenException",
        {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"},
    )
    status, headers, body = raw_post(
        batchemu_server.url + "/",
        b"{}",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.DescribeLogGroups"},
    )
    assert (status, headers["x-amzn-ErrorType"], body["__type"]) == (
        400,
        "MissingAuthenticationTokenException",
        "MissingAuthenticationTokenException",
    )
    # Nothing was created or read, and an unknown path is refused the same way (no operation names leak).
    status, _, body = raw_post(batchemu_server.url + "/v1/nosuchoperation", b"{}", {})
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")
    with urllib.request.urlopen(batchemu_server.url + "/_batchemu/health", timeout=10) as response:
        assert json.loads(response.read())["service"] == "batchemu"  # health stays open


@pytest.mark.parametrize("service", ["batch", "logs"])
@pytest.mark.parametrize(
    "skew_minutes, wording", [(-6, "Signature expired: "), (6, "Signature not yet current: ")]
)
def test_a_date_more_than_five_minutes_off_is_refused(
    batchemu_server, monkeypatch, service, skew_minutes, wording
):
    import botocore.auth

    signed_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=skew_minutes)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)
    refused = call(batchemu_server, service)
    assert (refused["code"], refused["status"]) == ("InvalidSignatureException", STATUS[service])
    stamp = signed_at.strftime("%Y%m%dT%H%M%SZ")
    relation = "is now earlier than" if skew_minutes < 0 else "is still later than"
    assert refused["message"].startswith(f"{wording}{stamp} {relation} "), refused["message"]
    # Within the allowed skew the same client is served.
    monkeypatch.setattr(
        botocore.auth,
        "get_current_datetime",
        lambda: signed_at - dt.timedelta(minutes=skew_minutes - (2 if skew_minutes > 0 else -2)),
    )
    assert call(batchemu_server, service) == {}


def signed(
    server,
    body: bytes,
    *,
    key: str = "AKIDALICE",
    service: str = "batch",
    presign: bool = False,
    path: str = "/v1/describejobqueues",
) -> AWSRequest:
    request = AWSRequest(
        method="POST", url=server.url + path, data=body, headers={"Content-Type": "application/json"}
    )
    credentials = Credentials(key, KEYS[key])
    signer = (
        SigV4QueryAuth(credentials, service, "us-east-1", expires=60)
        if presign
        else SigV4Auth(credentials, service, "us-east-1")
    )
    signer.add_auth(request)
    return request


def test_the_signature_covers_the_body_and_the_service(batchemu_server):
    request = signed(batchemu_server, b'{"maxResults": 1}')
    status, _, _ = raw_post(request.url, b'{"maxResults": 1}', dict(request.headers))
    assert status == 200
    status, _, body = raw_post(request.url, b'{"maxResults": 2}', dict(request.headers))  # tampered in flight
    assert (status, body) == (403, {"__type": "InvalidSignatureException", "message": BAD_SIGNATURE})
    request = signed(batchemu_server, b"{}", service="logs")  # a logs signature replayed on Batch
    status, _, body = raw_post(request.url, b"{}", dict(request.headers))
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert body["message"].startswith("Credential should be scoped to correct service: 'batch'.")


def test_a_presigned_query_string_is_accepted_and_checked(batchemu_server):
    # botocore's presigner moves a body into the query string (query protocol), so presign an empty one.
    request = signed(batchemu_server, b"", presign=True)
    assert "X-Amz-Signature=" in request.url and "Authorization" not in request.headers
    status, _, body = raw_post(request.url, b"", dict(request.headers))
    assert (status, body) == (200, {"jobQueues": []})
    tampered = request.url.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
    status, _, body = raw_post(tampered, b"", dict(request.headers))
    assert (status, body["__type"]) == (403, "InvalidSignatureException")


def test_keys_come_from_auth_flags_or_batchemu_auth(monkeypatch):
    assert parse_credentials("AK1:s/1+, AK2:with:colon") == {"AK1": "s/1+", "AK2": "with:colon"}
    monkeypatch.setenv("BATCHEMU_AUTH", "AK1:one,AK2:two")
    assert Config().auth == {"AK1": "one", "AK2": "two"}
    monkeypatch.delenv("BATCHEMU_AUTH")
    assert Config().auth == {}  # off by default
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--auth", "no-secret-here"])
    assert exited.value.code == 2
    monkeypatch.setenv("BATCHEMU_AUTH", "AK1")  # malformed: refuse to start rather than serve unauthenticated
    assert cli.main(["serve", "--port", "0", "--state", ":memory:"]) == 2


@pytest.mark.skipif(
    AWS_CLI is None,
    reason="needs the AWS CLI: /work/cli-venv/bin/aws, .clients/cli (make clients) or aws on PATH",
)
def test_the_aws_cli_signs_and_is_refused_with_a_wrong_secret(batchemu_server, tmp_path):
    def aws(secret: str, *args: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "AKIDALICE",
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_PAGER": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        return subprocess.run(
            [AWS_CLI, "--endpoint-url", batchemu_server.url, "--output", "json", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )

    done = aws(KEYS["AKIDALICE"], "batch", "describe-job-queues")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"jobQueues": []}
    done = aws(KEYS["AKIDALICE"], "logs", "describe-log-groups")
    assert done.returncode == 0, done.stderr
    done = aws("wrong", "batch", "describe-job-queues")
    assert done.returncode in (254, 255) and "InvalidSignatureException" in done.stderr, done.stderr
    done = aws("wrong", "logs", "describe-log-groups")
    assert done.returncode in (254, 255) and "InvalidSignatureException" in done.stderr, done.stderr
