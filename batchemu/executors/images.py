"""Which image a job runs: its name mapped by --image-map, an ECR URI's local twin, or the name as given.

Jobs written for AWS name images in ECR (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME[:TAG|@DIGEST]`,
`public.ecr.aws/ALIAS/NAME[:TAG]`), which a local engine can rarely pull; the same image built locally
is `NAME:TAG`. Pure functions; the Docker executor asks the engine which candidate exists.
"""

from __future__ import annotations

import re

PRIVATE_ECR = re.compile(r"^\d{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<name>.+)$")
PUBLIC_ECR = re.compile(r"^public\.ecr\.aws/[^/]+/(?P<name>.+)$")


def ecr_local_name(image: str) -> str | None:
    """`NAME:TAG` (tag `latest` by default) or `NAME@DIGEST` of an ECR image URI; None for other names."""
    match = PRIVATE_ECR.match(image) or PUBLIC_ECR.match(image)
    if match is None:
        return None
    name = match["name"]
    if "@" in name:
        return name
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def candidates(image: str, image_map: dict[str, str]) -> list[str]:
    """Names to run, in order: each but the last is used only when present locally; the last is pulled
    when absent. A mapped name replaces the job's; an ECR URI runs its local twin, else is pulled."""
    if image in image_map:
        return [image_map[image]]
    local = ecr_local_name(image)
    return [local, image] if local and local != image else [image]
