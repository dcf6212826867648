"""The dashboard's actions on a job: Cancel and Terminate buttons that call the same service handlers as the
API's CancelJob and TerminateJob (and so the same intents, batchemu.model.intents).

A button is a plain HTML form that POSTs to `PREFIX/jobs/<id>/cancel` (or `/terminate`) with the server's
token, a random value made when the server starts and written into its pages: a page of another site cannot
read it, so it cannot make a browser cancel a job here (cross-site request forgery). With
--dashboard-read-only the buttons are not shown and every POST is refused.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable

from flask import Blueprint, abort, redirect, request, url_for
from werkzeug.wrappers import Response

from batchemu.context import Context
from batchemu.model import states
from batchemu.service import jobs

TOKEN_FIELD = "token"
# action -> (the service handler, the reason the job is given, the statuses a job shows the button in)
ACTIONS: dict[str, tuple[Callable[[Context, dict], dict], str, tuple[str, ...]]] = {
    "cancel": (jobs.cancel_job, "Cancelled from the batchemu dashboard", states.QUEUED),
    "terminate": (jobs.terminate_job, "Terminated from the batchemu dashboard", states.ACTIVE),
}


def is_action(method: str, path: str, prefix: str) -> bool:
    """Whether a request is one of the actions' POSTs (the pipeline routes these, and GETs, to the dashboard)."""
    return method == "POST" and re.fullmatch(re.escape(prefix) + r"/jobs/[^/]+/(?:cancel|terminate)", path) is not None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def offered(ctx: Context, job: dict) -> list[str]:
    """The actions a job's page shows buttons for: none on a read-only dashboard or a finished job."""
    if ctx.config.dashboard_read_only:
        return []
    return [action for action, (_, _, shown) in ACTIONS.items() if job.get("status") in shown]


def add_routes(bp: Blueprint, ctx: Context, prefix: str, token: str) -> None:
    """POST `prefix/jobs/<id>/<action>`: check the token, call the handler, and send the browser back to the
    job's page (303, so that a reload does not post again)."""

    @bp.post(f"{prefix}/jobs/<job_id>/<action>")
    def act(job_id: str, action: str) -> Response:
        if action not in ACTIONS:
            abort(404, f"No dashboard action {action}")
        if ctx.config.dashboard_read_only:
            abort(403, "This dashboard is read-only (the server runs with --dashboard-read-only)")
        if not hmac.compare_digest(request.form.get(TOKEN_FIELD, ""), token):
            abort(403, "The form's token is missing or not this server's: reload the job's page and try again")
        handler, reason, _ = ACTIONS[action]
        handler(ctx, {"jobId": job_id, "reason": reason})
        return redirect(url_for("dashboard.job", job_id=job_id), 303)
