"""Runs job attempts as containers on the local Docker Engine through the docker SDK (being written)."""

from __future__ import annotations

from batchemu.config import Config


class DockerExecutor:
    def __init__(self, config: Config) -> None:
        self.config = config

    def status(self) -> tuple[bool, str]:
        return False, "Docker executor not built yet"

    def remove_all(self) -> None:
        pass
