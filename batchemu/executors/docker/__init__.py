"""Runs tasks as containers on the local Docker Engine through the docker SDK: the lifecycle.

A task's containers are all created by start(), which starts what can start at once; collect_exits()
then carries each task on from what the engine shows (batchemu.executors.tasks.step) and reports it once
it is over. Two background threads: the die-event follower (events.py) and the log pump (logs.py).
Containers, task volumes and task networks carry labels (job, attempt, instance, task), so a restarted
server adopts its tasks and removes what finished ones left behind.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import _create_container_args
from docker.utils import parse_repository_tag

from batchemu.config import Config
from batchemu.executors import (
    LABEL_JOB_ID,
    ContainerResult,
    ContainerSpec,
    EngineUnavailable,
    LogSink,
    Outcome,
    StartedTask,
    StartFailure,
    TaskExit,
    TaskSpec,
    faults,
    images,
    tasks,
)
from batchemu.executors.docker import arguments as create
from batchemu.executors.docker.engine import (
    LABEL_CONTAINER,
    LABEL_DEPENDS_ON,
    LABEL_ENDS_ON_FAILURE,
    LABEL_ESSENTIAL,
    LABEL_INDEX,
    LABEL_INIT,
    LABEL_LOG_GROUP,
    LABEL_LOG_STREAM,
    LABEL_NETWORK,
    LABEL_TASK,
    UNREACHABLE,
    Engine,
    attempt_key,
    container_name,
    daemon_said,
    epoch_ms,
    explain,
    network_name,
    remove_container_quietly,
    task_name,
    task_of,
)
from batchemu.executors.docker.events import DieEvents
from batchemu.executors.docker.logs import LogFiles, LogPump

__all__ = ["LABEL_LOG_GROUP", "LABEL_LOG_STREAM", "LABEL_NETWORK", "LABEL_TASK", "DockerExecutor"]

log = logging.getLogger("batchemu.executors.docker")

LIVE_STATES = ("running", "paused", "restarting")
REMOVING = "removing"     # the engine's status of a container whose removal is under way
IMAGE_TRUSTED_SECONDS = 5.0  # how long an image found locally is run without asking the engine again
EXIT_SCAN_SECONDS = 2.0   # longest time between two lists of this server's containers without a die event


class DockerExecutor:
    """The Executor of batchemu.executors on the Docker Engine of DOCKER_HOST (or the local socket)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._engine = Engine(config)
        self._lock = threading.Lock()  # guards the sets below
        self._reported: set[str] = set()   # tasks handed out (their containers removed on the next call)
        self._due: dict[str, _Removal] = {}  # tasks reported by the last collect_exits(), to remove on the next
        self._started: dict[str, _Removal] = {}  # tasks start() made, until reported: their containers
        self._task_of: dict[str, str] = {}       # container id -> task id, for the tasks in _started
        self._last_exit_scan = 0.0
        self._images: dict[str, tuple[float, str]] = {}  # a container's image -> (found at, local image)
        self._status: tuple[float, tuple[bool, str]] | None = None  # (asked at, answer) of the last "up"
        self._removing: set[str] = set()   # tasks being removed on the removal pool
        self._starting: set[str] = set()   # tasks inside start()
        self._stopping_tasks: set[str] = set()  # tasks whose containers are being stopped
        self._networks_in_use: dict[str, int] = {}  # network group -> starts under way that join it
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="batchemu-docker-rm")
        self._host_cpus: int | None = None
        self._swept = False   # idle task networks left by an earlier server removed on the first collect
        self._faults = faults.FaultBook()
        self._stopping = threading.Event()
        self._logs = LogPump(self._engine, self._stopping, dead_frames=LogFiles().frames)
        self._events = DieEvents(self._engine, self._stopping, self._logs.exited, self._logs.ship_final_lines)
        for thread in (self._events.thread, self._logs.thread):
            thread.start()

    def status(self) -> tuple[bool, str]:
        """Whether the engine answers. An answer stays true while the event stream that was open when it
        came stays open (it breaks when the engine goes), so the scheduler's checks cost no engine call."""
        answered = self._status
        connected = self._events.connected_since
        if answered is not None and connected is not None and answered[0] >= connected:
            return answered[1]
        asked = time.monotonic()
        status = self._ask_status()
        self._status = (asked, status) if status[0] else None
        return status

    def _ask_status(self) -> tuple[bool, str]:
        try:
            client = self._engine.client()
            version = client.api.version()
        except EngineUnavailable as exc:
            return False, str(exc)
        except UNREACHABLE as exc:
            return False, str(self._engine.unreachable(exc))
        except DockerException as exc:
            return False, f"Docker Engine error: {exc}"
        return True, f"Docker Engine {version.get('Version')} (API {client.api.api_version})"

    # -- starting ---------------------------------------------------------------------------------------

    def start(self, task: TaskSpec) -> StartedTask:
        client = self._engine.client()
        if self._faults.take_pull_failure(task.job_id):
            raise StartFailure(Outcome.PULL_FAILED, faults.pull_failure_detail(task.containers[0].image))
        task_id = task_name(task.job_id, task.attempt)
        with self._lock:
            self._starting.add(task_id)
            if task.network:
                self._networks_in_use[task.network] = self._networks_in_use.get(task.network, 0) + 1
        failed = True
        try:
            started = self._start(client, task, task_id)
            failed = False
            return started
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        finally:
            with self._lock:
                self._starting.discard(task_id)
                if task.network:
                    self._networks_in_use[task.network] -= 1
                    if not self._networks_in_use[task.network]:
                        del self._networks_in_use[task.network]
            if failed and task.network:
                self._remove_idle_networks(client)  # nothing of a task that did not start stays behind

    def _start(self, client: docker.DockerClient, task: TaskSpec, task_id: str) -> StartedTask:
        network, gateway = (self._ensure_network(client, task.network) if task.network
                            else (self.config.network or "host", None))
        volumes = {name: self._ensure_volume(client, task_id, name) for name in create.shared_volumes(task)}
        created: dict[str, tuple[str, str]] = {}   # name -> (container id, status)
        tracked: list[tuple[str, dict]] = []       # (container id, labels), for the log pump once started
        try:
            for container in task.containers:
                image = self._resolve_image(client, container)
                labels = create.labels_of(task, container, task_id, self._engine.own_labels())
                arguments = create.create_arguments(task, container, labels, network=network, gateway=gateway,
                                                    host_cpus=self._cpu_count(client), task_volumes=volumes)
                created[container.name] = self._create(client, task, task_id, container, image, arguments)
                tracked.append((created[container.name][0], labels))
            if all(status == "created" for _, status in created.values()):
                seen = [tasks.Seen(c.name, tasks.PENDING, essential=c.essential, init=c.init,
                                   depends_on=list(c.depends_on), ends_task_on_failure=c.ends_task_on_failure)
                        for c in task.containers]
                for name in tasks.step(seen).start:
                    self._start_container(client, created[name][0], name)
        except StartFailure:
            self._remove_task(client, task_id, [cid for cid, _ in created.values()])
            raise
        for container_id, labels in tracked:  # not before: the pump would read them while they start
            self._logs.track(container_id, labels)
        with self._lock:
            self._started[task_id] = _Removal([cid for cid, _ in created.values()], volumes=bool(volumes),
                                              networks=bool(task.network))
            self._task_of.update((cid, task_id) for cid, _ in created.values())
        address = None
        if task.network:
            first = created[next((c for c in task.containers if c.essential), task.containers[0]).name][0]
            networks = client.api.inspect_container(first)["NetworkSettings"]["Networks"] or {}
            address = (networks.get(network) or {}).get("IPAddress") or None
        log.debug("started task %s of job %s attempt %d", task_id, task.job_id, task.attempt)
        return StartedTask(task_id=task_id, address=address)

    def _ensure_network(self, client: docker.DockerClient, group: str) -> tuple[str, str | None]:
        """(name, gateway address on the host) of the group's task network, made if absent."""
        name = network_name(group)
        if not client.api.networks(names=[name]):
            try:
                client.api.create_network(name, driver="bridge", check_duplicate=True,
                                          labels={**self._engine.own_labels(), LABEL_NETWORK: group})
            except APIError as exc:
                if exc.status_code != 409:  # made meanwhile by another node of the job
                    raise StartFailure(Outcome.CREATE_FAILED, daemon_said(exc)) from exc
        try:
            configs = (client.api.inspect_network(name).get("IPAM") or {}).get("Config") or []
        except NotFound as exc:
            raise StartFailure(Outcome.CREATE_FAILED, f"network {name} was removed meanwhile") from exc
        gateway = next((c["Gateway"] for c in configs if c.get("Gateway") and ":" not in c["Gateway"]), None)
        return name, gateway

    def _ensure_volume(self, client: docker.DockerClient, task_id: str, volume: str) -> str:
        name = container_name(task_id, f"volume-{volume}")
        try:
            client.api.create_volume(name, labels={**self._engine.own_labels(), LABEL_TASK: task_id})
        except APIError as exc:
            raise StartFailure(Outcome.CREATE_FAILED, daemon_said(exc)) from exc
        return name

    def _resolve_image(self, client: docker.DockerClient, container: ContainerSpec, *, fresh: bool = False) -> str:
        """The local image to run for the container's `image`; the engine is asked again after
        IMAGE_TRUSTED_SECONDS (or when `fresh`): an image removed meanwhile makes the create fail with "No
        such image", and _create() then resolves it afresh and creates again."""
        known = self._images.get(container.image)
        if known is not None and not fresh and time.monotonic() - known[0] < IMAGE_TRUSTED_SECONDS:
            return known[1]
        image = self._find_image(client, container)
        self._images[container.image] = (time.monotonic(), image)
        return image

    def _find_image(self, client: docker.DockerClient, container: ContainerSpec) -> str:
        """The local image to run for the container's `image` (batchemu.executors.images), pulled if need be."""
        *local_only, last = images.candidates(container.image, self.config.image_map)
        for candidate in local_only:
            if self._present(client, candidate, container.name):
                log.debug("image %s runs as the local %s", container.image, candidate)
                return candidate
        if self._present(client, last, container.name):
            return last
        repository, tag = parse_repository_tag(last)
        log.info("pulling image %s", last)
        try:
            for progress in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if isinstance(progress, dict) and progress.get("error"):
                    raise StartFailure(Outcome.PULL_FAILED, progress["error"], container.name)
        except APIError as exc:
            raise StartFailure(Outcome.PULL_FAILED, daemon_said(exc), container.name) from exc
        return last

    @staticmethod
    def _present(client: docker.DockerClient, image: str, name: str) -> bool:
        try:
            client.images.get(image)
            return True
        except (ImageNotFound, NotFound):
            return False
        except APIError as exc:
            raise StartFailure(Outcome.PULL_FAILED, daemon_said(exc), name) from exc

    def _create(self, client: docker.DockerClient, task: TaskSpec, task_id: str, container: ContainerSpec,
                image: str, arguments: dict) -> tuple[str, str]:
        name = container_name(task_id, container.name)
        def create(image: str) -> str:
            # What client.containers.create() sends, without the inspection it makes of the new container.
            return client.api.create_container(**_create_container_args(
                {**arguments, "image": image, "name": name, "version": client.api._version}))["Id"]
        try:
            try:
                return create(image), "created"
            except ImageNotFound:  # removed since it was last looked for
                return create(self._resolve_image(client, container, fresh=True)), "created"
        except APIError as exc:
            if exc.status_code != 409:
                raise StartFailure(Outcome.CREATE_FAILED, daemon_said(exc), container.name) from exc
            # The attempt's container exists already (a start that timed out, a restart): carry on with it.
            existing = client.containers.get(name)
            if attempt_key(existing.labels) != (task.job_id, task.attempt):
                raise StartFailure(Outcome.CREATE_FAILED, daemon_said(exc), container.name) from exc
            return existing.id, existing.status

    def _start_container(self, client: docker.DockerClient, container_id: str, name: str) -> None:
        try:
            client.api.start(container_id)
        except APIError as exc:
            raise StartFailure(Outcome.START_FAILED, daemon_said(exc), name) from exc

    def _cpu_count(self, client: docker.DockerClient) -> int:
        if self._host_cpus is None:
            self._host_cpus = int(client.info().get("NCPU") or 1)
        return self._host_cpus

    # -- state of our tasks -----------------------------------------------------------------------------

    def _list(self, client: docker.DockerClient, *extra: str, **filters) -> dict[str, list[dict]]:
        """task id -> container summaries of this server's containers."""
        summaries = client.api.containers(all=True, filters={"label": self._engine.label_filters(*extra), **filters})
        out: dict[str, list[dict]] = {}
        for summary in summaries:
            labels = summary.get("Labels") or {}
            if attempt_key(labels) is not None:
                out.setdefault(task_of(labels, summary["Id"]), []).append(summary)
        return out

    def running(self) -> dict[tuple[str, int], str]:
        """Tasks with a container that runs or is still to start. Raises EngineUnavailable rather than
        answer "none" when the engine cannot be asked."""
        client = self._engine.client()
        try:
            listed = self._list(client)
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        # The scheduler takes a task missing from this list and from the next collect_exits() for one the
        # engine lost: that call must list the stopped containers, even before the die event of one is handled.
        self._events.died.set()
        with self._lock:
            reported = set(self._reported)
        return {key: task_id for task_id, members in listed.items()
                if task_id not in reported and any(m.get("State") in (*LIVE_STATES, "created") for m in members)
                and (key := attempt_key(members[0]["Labels"])) is not None}

    def collect_exits(self) -> list[TaskExit]:
        """Tasks reported by an earlier call are removed now (in the background), once the scheduler has
        recorded them; the others are carried on, and reported when over. The engine's container list is
        read only after a running() call, a die event of a container this executor did not start, or
        EXIT_SCAN_SECONDS after it was last read; a task this executor started is carried on from its
        die events: a pass with nothing new on the engine makes no engine call."""
        with self._lock:
            due, self._due = self._due, {}
        if not self.config.keep_containers:
            for task_id, removal in due.items():
                self._remove_later(task_id, removal)
        dead = self._events.take_dead()
        with self._lock:
            known = {self._task_of.get(container_id) for container_id in dead}
            if None in known:
                self._events.died.set()  # adopted after a restart: only the list tells its task
            tasks = {task_id: self._started[task_id] for task_id in known if task_id in self._started}
        try:
            if self._events.died.is_set() or time.monotonic() - self._last_exit_scan >= EXIT_SCAN_SECONDS:
                self._events.died.clear()  # before the list: one that dies during it is looked for next time
                self._last_exit_scan = time.monotonic()
                return self._scan_exits()
            return self._carry_on(tasks)
        except BaseException:
            self._events.died.set()
            raise

    def _carry_on(self, started: dict[str, _Removal]) -> list[TaskExit]:
        """Carry on tasks this executor started, one of whose containers died, without listing."""
        client = self._engine.client()
        exits = []
        with self._lock:
            busy = self._reported | self._starting
        try:
            for task_id, removal in started.items():
                if task_id in busy:
                    self._events.died.set()  # died while being started: looked at by the next list
                    continue
                exit = self._advance(client, task_id, [{"Id": cid} for cid in removal.container_ids])
                if exit is not None:
                    exits.append(exit)
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        self._reported_now(exits, started)
        return exits

    def _reported_now(self, exits: list[TaskExit], removals: dict[str, _Removal]) -> None:
        with self._lock:
            self._reported |= {e.task_id for e in exits}
            for e in exits:
                self._due[e.task_id] = removals[e.task_id]
                for container_id in (self._started.pop(e.task_id, None) or removals[e.task_id]).container_ids:
                    self._task_of.pop(container_id, None)

    def _scan_exits(self) -> list[TaskExit]:
        client = self._engine.client()
        try:
            listed = self._list(client)
            exits = []
            with self._lock:
                reported, starting = set(self._reported), set(self._starting)
            for task_id, members in listed.items():
                if task_id in reported:
                    if not self.config.keep_containers:  # a removal that failed, or left by an earlier server
                        self._remove_later(task_id, _Removal.of(members))
                    continue
                # A die event's inspection is newer than the list, which shows a death a moment later.
                states = {self._state(m) for m in members}
                if task_id in starting or states == {"created"} or states <= set(LIVE_STATES):
                    # Being started (or left mid-start by a server that died, which the restarted scheduler
                    # resumes by name), or running: nothing to do.
                    continue
                exit = self._advance(client, task_id, members)
                if exit is not None:
                    exits.append(exit)
            if not self._swept:
                self._swept = True
                self._remove_idle_networks(client)
            with self._lock:
                # Forget tasks the engine no longer lists (removed), so the sets stay small.
                self._reported &= set(listed)
                for task_id in [t for t in self._started if t not in listed and t not in self._starting]:
                    for container_id in self._started.pop(task_id).container_ids:
                        self._task_of.pop(container_id, None)
            self._reported_now(exits, {e.task_id: _Removal.of(listed[e.task_id]) for e in exits})
            return exits
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc

    def _state(self, summary: dict) -> str | None:
        inspection = self._events.inspection(summary["Id"])
        return inspection["State"]["Status"] if inspection is not None else summary.get("State")

    def _advance(self, client: docker.DockerClient, task_id: str, members: list[dict]) -> TaskExit | None:
        """Start what may start, stop what must stop; the task's exit once it is over."""
        containers, remembered = [], set()
        for member in members:
            inspection = self._events.inspection(member["Id"])
            if inspection is not None:  # stopped for good: its die event's inspection holds its end
                containers.append(inspection)
                remembered.add(member["Id"])
                continue
            try:
                containers.append(client.api.inspect_container(member["Id"]))
            except NotFound:
                return None  # removed under us (remove_all): nothing to report
        if any((attrs.get("State") or {}).get("Status") == REMOVING for attrs in containers):
            return None  # being removed behind our back (a forced removal kills it first): as if gone
        containers.sort(key=lambda attrs: int((attrs["Config"]["Labels"] or {}).get(LABEL_INDEX) or 0))
        seen = [_seen(attrs) for attrs in containers]
        step = tasks.step(seen)
        ids = {s.name: attrs["Id"] for s, attrs in zip(seen, containers)}
        for name in step.start:
            try:
                self._start_container(client, ids[name], name)
            except StartFailure as exc:
                log.info("container %s of task %s did not start: %s", name, task_id, exc)
        if step.stop:
            self._stop_later(task_id, [ids[s.name] for s in seen if s.state == tasks.RUNNING])
        if not step.over:
            return None
        key = attempt_key(containers[0]["Config"]["Labels"])
        if key is None:
            return None  # listed by our labels, so never met: a container without an attempt is not ours
        results = []
        for attrs, view in zip(containers, seen):
            results.append(_result(attrs, view, never=view.name in step.never))
            # Read when its die event was handled, as a rule; read now if it was found stopped by a list.
            found = self._logs.ship_final_lines(client, attrs["Id"], attrs["Config"]["Labels"] or {})
            if attrs["Id"] in remembered and not found and (found is False or not self._exists(client, attrs["Id"])):
                # Removed behind our back (its die event came from the removal's kill): as a container the
                # engine no longer has, it is not reported; the scheduler finds it gone.
                return None
        return self._faults.settle(TaskExit(job_id=key[0], attempt=key[1], task_id=task_id, containers=results))

    @staticmethod
    def _exists(client: docker.DockerClient, container_id: str) -> bool:
        try:
            client.api.inspect_container(container_id)
            return True
        except NotFound:
            return False

    def _stop_later(self, task_id: str, container_ids: list[str]) -> None:
        with self._lock:
            if task_id in self._stopping_tasks or not container_ids:
                return
            self._stopping_tasks.add(task_id)

        def stop() -> None:
            try:
                for container_id in container_ids:
                    self._stop_container(container_id, 10.0)
            finally:
                with self._lock:
                    self._stopping_tasks.discard(task_id)
        try:
            self._removals.submit(stop)
        except RuntimeError:  # closing
            with self._lock:
                self._stopping_tasks.discard(task_id)

    def _remove_later(self, task_id: str, removal: _Removal) -> None:
        """Remove a reported task on the removal pool, so the scheduler's pass does not wait for it."""
        with self._lock:
            if task_id in self._removing:
                return
            self._removing.add(task_id)

        def remove() -> None:
            try:
                self._remove_task(self._engine.client(), task_id, removal.container_ids,
                                  volumes=removal.volumes, networks=removal.networks)
            finally:
                with self._lock:
                    self._removing.discard(task_id)
        try:
            self._removals.submit(remove)
        except RuntimeError:  # closing: the next server's pass removes it
            with self._lock:
                self._removing.discard(task_id)

    def _remove_task(self, client: docker.DockerClient, task_id: str, container_ids: list[str], *,
                     volumes: bool = True, networks: bool = True) -> None:
        """The task's containers, then its volumes, then task networks left without containers (volumes
        and networks looked for only when the task may have some)."""
        for container_id in container_ids:
            self._logs.forget(container_id)
            self._events.forget(container_id)
            remove_container_quietly(client, container_id)
        if not volumes:
            if networks:
                self._remove_idle_networks(client)
            return
        try:
            for volume in (client.api.volumes(filters={"label": f"{LABEL_TASK}={task_id}"}) or {}).get("Volumes") or []:
                client.api.remove_volume(volume["Name"], force=True)
        except (DockerException, *UNREACHABLE) as exc:
            log.warning("could not remove the volumes of task %s: %s", task_id, exc)
        self._remove_idle_networks(client)

    def _remove_idle_networks(self, client: docker.DockerClient) -> None:
        """Task networks no container is attached to and no start is about to join."""
        try:
            networks = client.api.networks(filters={"label": self._engine.label_filters()})
            for network in networks:
                group = (network.get("Labels") or {}).get(LABEL_NETWORK)
                with self._lock:
                    if group in self._networks_in_use:
                        continue
                    if client.api.inspect_network(network["Id"]).get("Containers"):
                        continue
                    try:
                        client.api.remove_network(network["Id"])
                    except NotFound:
                        pass
                    except APIError as exc:  # a container joined meanwhile
                        log.debug("task network %s stays: %s", network.get("Name"), explain(exc))
        except (DockerException, *UNREACHABLE) as exc:
            log.warning("could not remove idle task networks: %s", exc)

    def stop(self, task_id: str, timeout: float = 10.0) -> None:
        """A task already gone is fine; an engine that refuses is logged (the exit is what counts)."""
        client = self._engine.client()
        try:
            members = self._members(client, task_id)
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        for container_id in members:
            self._stop_container(container_id, timeout)

    def _members(self, client: docker.DockerClient, task_id: str) -> list[str]:
        return [m["Id"] for m in self._list(client).get(task_id, [])]

    def _stop_container(self, container_id: str, timeout: float) -> None:
        client = self._engine.client()
        try:
            client.api.stop(container_id, timeout=max(0, math.ceil(timeout)))
        except NotFound:
            pass
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        except APIError as exc:
            log.warning("could not stop container %s: %s", container_id[:12], explain(exc))

    def inject_fault(self, job_id: str, attempt: int, task_id: str | None, fault: str) -> None:
        """Kill the task's containers (SIGKILL, as a host that vanishes) and report the fault's outcome."""
        if fault == faults.PULL_FAILURE:
            self._faults.arm_pull_failure(job_id)
            return
        client = self._engine.client()
        try:
            members = self._list(client, f"{LABEL_JOB_ID}={job_id}", status=list(LIVE_STATES)).get(task_id or "", [])
        except UNREACHABLE as exc:
            raise self._engine.unreachable(exc) from exc
        if not members or task_id is None:
            raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already")
        self._faults.mark(task_id, fault)
        killed = 0
        for member in members:
            try:
                client.api.kill(member["Id"])
                killed += 1
            except (NotFound, APIError):
                continue  # ended meanwhile
        if not killed:
            self._faults.unmark(task_id)
            raise faults.FaultRefused(f"attempt {attempt} of job {job_id} has ended already")

    def remove_all(self) -> None:
        try:
            client = self._engine.client()
            listed = self._list(client)
        except (EngineUnavailable, DockerException, *UNREACHABLE) as exc:
            log.warning("could not list containers to remove: %s", exc)
            return
        for task_id, members in listed.items():
            self._remove_task(client, task_id, [m["Id"] for m in members])
        self._remove_idle_networks(client)

    def set_listener(self, on_event) -> None:
        self._events.listener = on_event

    def set_log_sink(self, sink: LogSink) -> None:
        self._logs.sink = sink

    def close(self) -> None:
        self._stopping.set()
        self._removals.shutdown(wait=True)
        self._events.close()
        for thread in (self._events.thread, self._logs.thread):
            if thread is not threading.current_thread():
                thread.join(timeout=5)


@dataclass(frozen=True)
class _Removal:
    """A task's containers to remove, and whether it may have left a task volume or network."""

    container_ids: list[str]
    volumes: bool
    networks: bool

    @classmethod
    def of(cls, summaries: list[dict]) -> _Removal:
        """From the engine's container list (a summary names the container's mounts and labels)."""
        return cls(container_ids=[s["Id"] for s in summaries],
                   volumes=any(m.get("Type") == "volume" for s in summaries for m in s.get("Mounts") or []),
                   networks=any(LABEL_NETWORK in (s.get("Labels") or {}) for s in summaries))


def _seen(attrs: dict) -> tasks.Seen:
    """A container as batchemu.executors.tasks reads it, from its inspection."""
    labels = attrs.get("Config", {}).get("Labels") or {}
    state = attrs.get("State", {})
    status = state.get("Status")
    started = epoch_ms(state.get("StartedAt")) is not None
    if state.get("Error") and not started:
        phase = tasks.FAILED_TO_START
    elif status == "created":
        phase = tasks.PENDING
    elif status in LIVE_STATES:
        phase = tasks.RUNNING
    else:
        phase = tasks.EXITED
    depends_on = [tuple(d) for d in json.loads(labels.get(LABEL_DEPENDS_ON) or "[]")]
    return tasks.Seen(name=labels.get(LABEL_CONTAINER) or "default", state=phase, exit_code=state.get("ExitCode"),
                      essential=labels.get(LABEL_ESSENTIAL, "1") == "1", init=LABEL_INIT in labels,
                      depends_on=depends_on, ends_task_on_failure=LABEL_ENDS_ON_FAILURE in labels)


def _result(attrs: dict, seen: tasks.Seen, *, never: bool) -> ContainerResult:
    state = attrs.get("State", {})
    result = ContainerResult(name=seen.name, outcome=Outcome.EXITED, essential=seen.essential,
                             container_id=attrs["Id"], started_at=epoch_ms(state.get("StartedAt")),
                             finished_at=epoch_ms(state.get("FinishedAt")))
    if seen.state == tasks.FAILED_TO_START:
        result.outcome, result.detail = Outcome.START_FAILED, f"Error response from daemon: {state['Error']}"
        result.started_at = result.finished_at = None
    elif never or seen.state == tasks.PENDING:
        result.outcome, result.started_at, result.finished_at = Outcome.NOT_STARTED, None, None
    else:
        result.exit_code = state.get("ExitCode")
        if result.started_at is not None and result.finished_at is not None:
            # The engine stamps StartedAt after the process runs: a quick one can "finish" before it started.
            result.finished_at = max(result.finished_at, result.started_at)
        if state.get("OOMKilled"):
            result.outcome = Outcome.OOM_KILLED
    return result
