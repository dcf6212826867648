"""Executors by name: `--executor NAME` (config.executor) picks the factory that builds the server's one."""

from __future__ import annotations

from collections.abc import Callable

from batchemu.config import Config
from batchemu.executors import Executor


def _docker(config: Config) -> Executor:
    from batchemu.executors.docker import DockerExecutor  # the docker SDK only when it is used
    return DockerExecutor(config)


def _simulate(config: Config) -> Executor:
    from batchemu.executors.simulate import SimulatedExecutor
    return SimulatedExecutor(config)


def _swarm(config: Config) -> Executor:
    from batchemu.executors.swarm import SwarmExecutor
    return SwarmExecutor(config)


EXECUTORS: dict[str, Callable[[Config], Executor]] = {"docker": _docker, "simulate": _simulate, "swarm": _swarm}


def create_executor(config: Config) -> Executor:
    """The executor config.executor names; ValueError naming the known ones otherwise."""
    factory = EXECUTORS.get(config.executor)
    if factory is None:
        raise ValueError(f"unknown executor {config.executor!r}; choose one of {', '.join(sorted(EXECUTORS))}")
    return factory(config)
