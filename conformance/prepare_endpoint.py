"""Creates, through an endpoint's own IAM and EC2 APIs, the role, subnet and security group that
compute environments refer to, and prints the matching pytest options.

Needed by endpoints that check those references exist (moto does); batchemu and AWS need no preparation.

    python -m conformance.prepare_endpoint http://127.0.0.1:5055
    --service-role arn:aws:iam::123456789012:role/... --subnet subnet-... --security-group sg-...
"""

from __future__ import annotations

import json
import sys
import uuid

import boto3


def prepare(endpoint: str, region: str = "us-east-1") -> list[str]:
    session = boto3.session.Session(aws_access_key_id="conformance", aws_secret_access_key="conformance",
                                    region_name=region)
    iam = session.client("iam", endpoint_url=endpoint)
    ec2 = session.client("ec2", endpoint_url=endpoint)
    suffix = uuid.uuid4().hex[:8]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "batch.amazonaws.com"}}]}
    role = iam.create_role(RoleName=f"conformance-batch-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"conformance-{suffix}", Description="conformance",
                                      VpcId=vpc)["GroupId"]
    instance_role = iam.create_instance_profile(InstanceProfileName=f"conformance-ecs-{suffix}")
    return ["--service-role", role["Role"]["Arn"], "--subnet", subnet, "--security-group", group,
            "--instance-role", instance_role["InstanceProfile"]["Arn"]]


if __name__ == "__main__":
    print(" ".join(prepare(sys.argv[1], *sys.argv[2:3])))
