"""Wires store, service, scheduler and executor together behind a threaded HTTP server."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import uuid
from pathlib import Path

from cheroot import wsgi

from batchemu.config import Config
from batchemu.context import Context
from batchemu.http.app import create_app, health_report
from batchemu.http.dashboard import create_blueprint
from batchemu.http.event_stream import EventStream
from batchemu.http.rendering import JsonErrorConnection
from batchemu.model import arrays
from batchemu.protocol.serializer import projector
from batchemu.scheduler.event_delivery import EventDelivery
from batchemu.scheduler.queue_front import queue_front
from batchemu.service import HANDLERS, cloudwatch_logs, fault_injection
from batchemu.store import StateError, Store

log = logging.getLogger("batchemu")
LISTEN_BACKLOG = 128  # pending connections the kernel queues before the HTTP server accepts them
SERVER_NAME = "batchemu"


class Server:
    """One emulator instance: call start() for a background thread or serve_forever() to block."""

    def __init__(self, config: Config, *, with_scheduler: bool = True) -> None:
        self.config = config
        if config.state != ":memory:":
            try:
                Path(config.state).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(config.state, exc) from None
        self.store = Store(config.state, job_wire=projector("batch", "JobDetail"),
                           summary_wire=projector("batch", "JobSummary"), child_doc=arrays.child_doc)
        if not config.instance_label:
            # Containers are labelled with this, so a server restarted on the same state adopts its own.
            key = str(uuid.uuid4()) if config.state == ":memory:" else os.path.abspath(config.state)
            config.instance_label = hashlib.sha1(key.encode()).hexdigest()[:16]
        self.ctx = Context(store=self.store, config=config, queue_front=queue_front)
        self.scheduler = None
        self.executor = None
        self.events = EventDelivery(self.ctx)
        self._streams_stopping = threading.Event()  # ends the open GET /_batchemu/events streams
        if with_scheduler:
            from batchemu.executors.registry import create_executor
            from batchemu.scheduler import Scheduler
            self.executor = create_executor(config)
            self.scheduler = Scheduler(self.ctx, self.executor)
            self.ctx.notify = self.scheduler.notify
        self.app = create_app(self.ctx, HANDLERS, {"logs": cloudwatch_logs.OPERATIONS},
                              self.health,
                              lambda request: fault_injection.inject(self.ctx, self.executor, request),
                              dashboard=create_blueprint(self.ctx, self.health),
                              events=EventStream(self._streams_stopping))
        # cheroot keeps connections alive (werkzeug's server closes every one) and serves from a thread pool.
        # cheroot's default listen backlog of 5 drops the SYNs of a client pool opening 16 connections at once;
        # each dropped one waits a second for the kernel to retry.
        self.httpd = wsgi.Server((config.host, config.port), self.app, numthreads=16, server_name=SERVER_NAME,
                                 request_queue_size=LISTEN_BACKLOG)
        self.httpd.ConnectionClass = JsonErrorConnection  # cheroot's own error answers in AWS's JSON form
        self.httpd.expiration_interval = 0.05  # how often serve() looks up from select(): stop() waits on it
        self.httpd.prepare()
        # Port 0 asks the OS for a free port; the endpoint must name the real one.
        self.config.port = self.httpd.bind_addr[1]
        self._thread: threading.Thread | None = None

    def health(self) -> dict:
        """What GET /_batchemu/health answers (the dashboard shows its executor part), with the scheduler's
        completed passes when it runs."""
        cluster = getattr(self.executor, "cluster", None)
        report = health_report(self.ctx, self._engine_status, cluster or (lambda: None))
        if self.scheduler is not None:
            report["scheduler"] = {"passes": self.scheduler.passes}
        with self.store.read() as tx:
            report["events"] = {"lastSequence": tx.events.last_seq(), "deliveredThrough": tx.events.delivered(),
                                "endpoint": self.config.events_endpoint or None,
                                "failuresInARow": self.events.failures}
        return report

    def _engine_status(self) -> tuple[bool, str]:
        if self.executor is None:
            return False, "scheduler disabled"
        return self.executor.status()

    @property
    def url(self) -> str:
        return self.config.endpoint_url

    def start(self) -> Server:
        self._streams_stopping.clear()
        self.events.start()
        if self.scheduler is not None:
            self.scheduler.start()
        self._thread = threading.Thread(target=self.httpd.serve, name="batchemu-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop cleanly (running containers are left to be adopted)."""
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        self.start()
        log.info("batchemu serving on %s (state %s, pid %d)", self.url, self.config.state, os.getpid())
        try:
            while not stopping.wait(0.5):
                pass
        finally:
            log.info("batchemu stopping")
            self.stop()

    def stop(self, *, remove_containers: bool = False) -> None:
        """Stop serving; with remove_containers, also remove every container this server started."""
        self._streams_stopping.set()
        self.httpd.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.events.stop()
        if remove_containers and self.executor is not None:
            self.executor.remove_all()
