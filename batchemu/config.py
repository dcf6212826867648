"""Server settings, from command-line flags or BATCHEMU_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_state_path() -> str:
    """$BATCHEMU_STATE, else $XDG_STATE_HOME/batchemu/state.sqlite3 (~/.local/state/... by default)."""
    if os.environ.get("BATCHEMU_STATE"):
        return os.environ["BATCHEMU_STATE"]
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "batchemu" / "state.sqlite3")


def _env_credentials() -> dict[str, str]:
    try:
        return parse_credentials(os.environ.get("BATCHEMU_AUTH", ""))
    except ValueError as exc:
        raise ValueError(f"BATCHEMU_AUTH: {exc}") from None


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def parse_image_map(text: str) -> dict[str, str]:
    """`FROM=TO[,FROM2=TO2]` -> {FROM: TO}; ValueError naming a malformed entry."""
    mapping = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        source, _, target = entry.partition("=")
        if not source.strip() or not target.strip():
            raise ValueError(f"image map entry {entry!r} is not FROM=TO")
        mapping[source.strip()] = target.strip()
    return mapping


def _env_image_map() -> dict[str, str]:
    try:
        return parse_image_map(os.environ.get("BATCHEMU_IMAGE_MAP", ""))
    except ValueError as exc:
        raise ValueError(f"BATCHEMU_IMAGE_MAP: {exc}") from None


def _env_s3_map() -> dict[str, str]:
    try:
        return parse_image_map(os.environ.get("BATCHEMU_S3_MAP", ""))
    except ValueError as exc:
        raise ValueError(f"BATCHEMU_S3_MAP: {exc}") from None


def default_training_dir(state: str) -> str:
    """$BATCHEMU_TRAINING_DIR, else `training/` beside a state file, else a folder under the temp dir."""
    if os.environ.get("BATCHEMU_TRAINING_DIR"):
        return os.environ["BATCHEMU_TRAINING_DIR"]
    if state == ":memory:" or state.startswith("file::memory:"):
        import tempfile
        return str(Path(tempfile.gettempdir()) / "batchemu-training")
    return str(Path(state).resolve().parent / "training")



def parse_credentials(text: str) -> dict[str, str]:
    """{access key: secret} from "KEY:SECRET[,KEY:SECRET...]" (the secret may hold ':' but no ',')."""
    keys: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, secret = pair.partition(":")
        if not sep or not key or not secret:
            raise ValueError(f"expected ACCESS_KEY:SECRET, got {pair.split(':')[0]}:...")
        keys[key] = secret
    return keys

@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    state: str = field(default_factory=default_state_path)
    region: str = field(default_factory=lambda: os.environ.get("BATCHEMU_REGION", "us-east-1"))
    account_id: str = field(default_factory=lambda: os.environ.get("BATCHEMU_ACCOUNT_ID", "123456789012"))
    # Minimum seconds a job stays in each state, so polling code can be tested against slow transitions.
    state_dwell: float = field(default_factory=lambda: _env_float("BATCHEMU_STATE_DWELL", 0.0))
    # Keep finished containers instead of removing them (for debugging a job).
    keep_containers: bool = field(default_factory=lambda: os.environ.get("BATCHEMU_KEEP_CONTAINERS") == "1")
    # Refuse privileged containers and devices, and host-path volumes (for a server shared by a team).
    deny_privileged: bool = field(default_factory=lambda: os.environ.get("BATCHEMU_DENY_PRIVILEGED") == "1")
    deny_host_volumes: bool = field(default_factory=lambda: os.environ.get("BATCHEMU_DENY_HOST_VOLUMES") == "1")
    # Docker network of job containers; "host" lets a job reach this server at 127.0.0.1.
    network: str = field(default_factory=lambda: os.environ.get("BATCHEMU_NETWORK", "host"))
    # vCPUs an UNMANAGED compute environment offers when unmanagedvCpus is not set.
    unmanaged_default_vcpus: int = field(
        default_factory=lambda: int(os.environ.get("BATCHEMU_UNMANAGED_VCPUS", "256")))
    # Seconds a managed CE's unused desiredvCpus waits before scaling in: replaces the default and caps
    # scalingPolicy.minScaleDownDelayMinutes (None: the policy, else batchemu.scheduler.scaling's default).
    scale_down_delay: float | None = field(default_factory=lambda: float(os.environ["BATCHEMU_SCALE_DOWN_DELAY"])
                                           if os.environ.get("BATCHEMU_SCALE_DOWN_DELAY") else None)
    # Seconds between scheduler passes when nothing wakes it.
    tick: float = field(default_factory=lambda: _env_float("BATCHEMU_TICK", 1.0))
    # Access key -> secret: when set, every API request must carry a SigV4 signature by one of them.
    auth: dict[str, str] = field(default_factory=_env_credentials, repr=False)
    # What runs attempts: "docker" (containers on the Docker Engine) or "simulate" (no engine at all).
    executor: str = field(default_factory=lambda: os.environ.get("BATCHEMU_EXECUTOR", "docker"))
    # Seconds a simulated attempt runs unless its job sets BATCHEMU_SIMULATE_SECONDS.
    simulate_seconds: float = field(default_factory=lambda: _env_float("BATCHEMU_SIMULATE_SECONDS", 0.2))
    # Image name -> local image name to run instead (before the ECR URI rule of batchemu.executors.images).
    image_map: dict[str, str] = field(default_factory=_env_image_map)
    # S3 URI prefix -> local folder: training channels and outputs under such a prefix are read and written there.
    s3_map: dict[str, str] = field(default_factory=_env_s3_map)
    # Where service jobs' training folders (config, output, models without an S3OutputPath) live; "" = default.
    training_dir: str = ""
    # The dashboard shows no Cancel or Terminate buttons and refuses their POSTs.
    dashboard_read_only: bool = field(default_factory=lambda: os.environ.get("BATCHEMU_DASHBOARD_READ_ONLY") == "1")
    # Label put on every container this server starts (the pytest plugin removes them by it).
    instance_label: str = ""
    # A local EventBridge (moto's, LocalStack's) that receives Batch's events by PutEvents; "" = none.
    events_endpoint: str = field(default_factory=lambda: os.environ.get("BATCHEMU_EVENTS_ENDPOINT", ""))
    # The event bus they are put on.
    events_bus: str = field(default_factory=lambda: os.environ.get("BATCHEMU_EVENTS_BUS", "default"))
    # How many events the state keeps for GET /_batchemu/events (never dropping one not yet delivered).
    events_kept: int = field(default_factory=lambda: int(os.environ.get("BATCHEMU_EVENTS_KEPT", "10000")))

    @property
    def training_root(self) -> str:
        return self.training_dir or default_training_dir(self.state)

    @property
    def endpoint_url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")
