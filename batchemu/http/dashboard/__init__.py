"""A dashboard in the browser: `GET /` (job queues and compute environments, with each compute environment's
capacity over time), a queue's jobs and their timeline, and a job's details, dependency graph, array progress
and log, server-rendered with Jinja; the pictures are inline SVG drawn by the server (pictures.py), and htmx
(vendored under static/) re-reads the live part of each page every 2 seconds. Every read goes through the
service layer or the store's aggregates (batchemu.http.dashboard.reads). A job's page has Cancel and
Terminate buttons (actions.py) unless the server runs with --dashboard-read-only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from flask import Blueprint, Response, abort, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from batchemu import __version__
from batchemu.context import Context
from batchemu.errors import ServiceError
from batchemu.http.dashboard import actions, pictures, reads

log = logging.getLogger("batchemu")

PREFIX = "/_batchemu/dashboard"
REFRESH_SECONDS = 2
# The windows of time a timeline or capacity chart may show (?window=...), and the default one.
WINDOWS = {"5m": 300, "15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}
DEFAULT_WINDOW = "1h"
# Scripts only from this server (htmx makes no eval); inline style attributes and <style> are ours.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def when(epoch_ms: object) -> str:
    """Epoch milliseconds as a UTC time; an empty string for a time the job does not have (yet)."""
    if not isinstance(epoch_ms, int):
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _status_argument() -> str | None:
    status = request.args.get("status", "")
    if status not in ("", *reads.STATUSES):
        abort(400, f"Unknown status {status!r}: use one of {', '.join(reads.STATUSES)}, or none for all")
    return status or None


def _window_argument() -> str:
    window = request.args.get("window") or DEFAULT_WINDOW
    if window not in WINDOWS:
        abort(400, f"Unknown window {window!r}: use one of {', '.join(WINDOWS)}")
    return window


def _job_link(job_id: str) -> str:
    return url_for("dashboard.job", job_id=job_id)


def _array_bars(ctx: Context, jobs: list[dict]) -> dict[str, Markup]:
    """Array parent id -> its progress bar, for the array parents among `jobs` (summaries or details)."""
    sizes: dict[str, int] = {job["jobId"]: job["arrayProperties"]["size"] for job in jobs
                             if (job.get("arrayProperties") or {}).get("size")}
    counts = reads.array_progress(ctx, list(sizes))
    return {job_id: pictures.array_bar(counts.get(job_id, {}), size) for job_id, size in sizes.items()}


def is_dashboard_request(method: str, path: str) -> bool:
    """Whether the dashboard answers a request: GET or HEAD of `/` or a path under PREFIX, or an action's POST."""
    if method in ("GET", "HEAD"):
        return path in ("/", PREFIX) or path.startswith(PREFIX + "/")
    return actions.is_action(method, path, PREFIX)


def create_blueprint(ctx: Context, health: Callable[[], dict] = dict) -> Blueprint:
    """The dashboard's routes: `/` and everything under PREFIX, GET (and HEAD), and the POSTs of a job's
    actions (actions.py). `health` is the server's
    health report; the overview shows its executor (and a swarm's nodes)."""
    bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                   static_url_path=f"{PREFIX}/static")
    token = actions.new_token()
    actions.add_routes(bp, ctx, PREFIX, token)

    @bp.app_template_filter("when")
    def _when(epoch_ms: object) -> str:
        return when(epoch_ms)

    @bp.app_context_processor
    def _globals() -> dict:
        return {"version": __version__, "refresh_seconds": REFRESH_SECONDS, "statuses": reads.STATUSES,
                "now_text": when(ctx.clock()), "read_only": ctx.config.dashboard_read_only, "action_token": token,
                "token_field": actions.TOKEN_FIELD}

    @bp.after_request
    def _headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    @bp.errorhandler(reads.NotFound)
    def _not_found(exc: reads.NotFound) -> tuple[str, int]:
        return render_template("error.html", live=False, title="Not found", message=str(exc)), 404

    @bp.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> tuple[str, int]:
        status = exc.status if 400 <= exc.status < 500 else 500
        return render_template("error.html", live=False, title=exc.code, message=exc.message), status

    @bp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html", live=False, title=exc.name, message=exc.description), exc.code or 500

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[str, int]:
        log.exception("dashboard error in %s %s", request.method, request.path)
        return render_template("error.html", live=False, title="Internal error", message=type(exc).__name__), 500

    @bp.get("/", provide_automatic_options=False)
    def overview() -> str:
        queues = reads.job_queue_list(ctx)
        counts = {queue["jobQueueArn"]: reads.status_counts(ctx, {"jobQueue": queue["jobQueueArn"]})
                  for queue in queues}
        window = _window_argument()
        until = ctx.clock()
        since = until - WINDOWS[window] * 1000
        environments = reads.compute_environment_list(ctx)
        history = reads.capacity_history(ctx, since)
        in_use = reads.vcpus_in_use(ctx)
        charts = {}
        for ce in environments:
            arn, resources = ce["computeEnvironmentArn"], ce.get("computeResources") or {}
            # The samples end with the values the tables above show (the scheduler samples every few seconds).
            samples = [*history.get(arn, []), (until, in_use.get(arn, 0.0), resources.get("desiredvCpus"))]
            charts[arn] = pictures.capacity_chart(ce["computeEnvironmentName"], samples if len(samples) > 1 else [],
                                                  resources.get("maxvCpus") or ce.get("unmanagedvCpus"), since, until)
        return render_template("overview.html", queues=queues, counts=counts, compute_environments=environments,
                               in_use=in_use, executor=health().get("executor"), capacity_charts=charts,
                               window=window, windows=WINDOWS)

    @bp.get(f"{PREFIX}/queues/<name>")
    def queue(name: str) -> str:
        job_queue = reads.job_queue(ctx, name)
        status = _status_argument()
        scope = {"jobQueue": job_queue["jobQueueArn"]}
        jobs, next_token = reads.job_page(ctx, scope, status, request.args.get("next") or None)
        window = _window_argument()
        until = ctx.clock()
        since = until - WINDOWS[window] * 1000
        rows = reads.timeline(ctx, job_queue["jobQueueArn"], since, until)
        return render_template("queue.html", queue=job_queue, status=status, jobs=jobs, next_token=next_token,
                               counts=reads.status_counts(ctx, scope), window=window, windows=WINDOWS,
                               timeline=pictures.timeline(rows, since, until, _job_link),
                               timeline_full=len(rows) >= reads.TIMELINE_JOBS, array_bars=_array_bars(ctx, jobs))

    @bp.get(f"{PREFIX}/jobs/<job_id>")
    def job(job_id: str) -> str:
        detail = reads.job(ctx, job_id)
        status = _status_argument()
        children: list[dict] = []
        next_token = None
        array = detail.get("arrayProperties") or {}
        if array.get("size"):
            children, next_token = reads.job_page(ctx, {"arrayJobId": detail["jobId"]}, status,
                                                  request.args.get("next") or None)
        group = reads.log_group(detail)
        stream = (detail.get("container") or {}).get("logStreamName")
        events = reads.log_events(ctx, group, stream)
        upstream, downstream = reads.dependency_graph(ctx, detail)
        return render_template("job.html", job=detail, status=status, children=children, next_token=next_token,
                               log_group=group, log_stream=stream, events=events, log_limit=reads.LOG_LINES,
                               graph=pictures.dependency_graph(detail, upstream, downstream, _job_link)
                               if upstream or downstream else None,
                               array_bars=_array_bars(ctx, [detail]),
                               array_counts=reads.array_progress(ctx, [detail["jobId"]]).get(detail["jobId"], {}),
                               actions=actions.offered(ctx, detail))

    @bp.get(f"{PREFIX}/", defaults={"rest": ""})
    @bp.get(f"{PREFIX}/<path:rest>")
    def unknown(rest: str) -> tuple[str, int]:
        return render_template("error.html", live=False, title="Not found",
                               message=f"No dashboard page at {request.path}"), 404

    return bp
