"""The dashboard's pictures as inline SVG, drawn by the server from its own data (no chart library, nothing
from the internet): a queue's timeline, a job's dependency graph, an array's progress bar and a compute
environment's capacity over time.

Each picture is a pure function of plain data (epoch-millisecond times, job summaries, counts) that returns
escaped SVG markup; the view functions read the data (batchemu.http.dashboard.reads) and pass the markup to
the templates. The coordinates are those of a viewBox the browser scales to the page's width.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import pairwise

from markupsafe import Markup, escape

from batchemu.model import states

STATUS_COLOURS = {
    states.SUBMITTED: "#c9ced6", states.PENDING: "#a9b1bd", states.RUNNABLE: "#f0b429",
    states.STARTING: "#8dbbee", states.RUNNING: "#2f7ed8", states.SUCCEEDED: "#2e9e4f", states.FAILED: "#c0392b",
}
# What a span of the timeline shows, by the status the job was in: queued, waiting for capacity, on a host.
SPAN_KINDS = {states.SUBMITTED: "queued", states.PENDING: "queued", states.RUNNABLE: "waiting",
              states.STARTING: "running", states.RUNNING: "running"}
SPAN_COLOURS = {"queued": "#d5dae1", "waiting": "#f0b429", "running": "#2f7ed8"}
FAILED_COLOUR, SUCCEEDED_COLOUR, DESIRED_COLOUR, MAX_COLOUR = "#c0392b", "#2e9e4f", "#e67e22", "#7d8896"
WIDTH = 1000
LABEL_WIDTH = 230
ROW_HEIGHT = 18
AXIS_HEIGHT = 22
# Tick spacings of a time axis, in seconds; the first giving at most MAX_TICKS ticks is used.
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_TICKS = 10
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


@dataclass(frozen=True)
class Span:
    kind: str  # a value of SPAN_KINDS
    start: int
    end: int


@dataclass(frozen=True)
class Mark:
    kind: str  # "failed" (an attempt or the job failed) or "succeeded"
    at: int


def _svg(height: float, body: Iterable[str], label: str, css_id: str = "", width: int = WIDTH) -> Markup:
    ident = f' id="{escape(css_id)}"' if css_id else ""
    return Markup(f'<svg{ident} class="picture" role="img" aria-label="{escape(label)}" '
                  f'viewBox="0 0 {width} {height:g}" width="100%" preserveAspectRatio="xMinYMin meet" '
                  f'xmlns="http://www.w3.org/2000/svg" {FONT}>' + "".join(body) + "</svg>")


def clock_text(epoch_ms: int, seconds: bool = True) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%H:%M:%S" if seconds else "%H:%M")


def ticks(since: int, until: int) -> list[int]:
    """Round times (epoch ms) between since and until for a time axis: at most MAX_TICKS of them."""
    length = max(until - since, 1)
    step = next((s * 1000 for s in TICK_STEPS if length / (s * 1000) <= MAX_TICKS), TICK_STEPS[-1] * 1000)
    first = -(-since // step) * step
    return list(range(first, until + 1, step))


def fit(since: int, until: int, starts: list[int]) -> int:
    """Where a picture of the window [since, until] starts its axis: at the first of `starts` (a little
    before), when that is later than `since`, so that a few minutes of jobs in the last hour fill the width."""
    if not starts:
        return since
    first = min(starts)
    return max(since, first - max((until - first) // 30, 1000))


def _time_axis(since: int, until: int, x: Callable[[int], float], top: float, bottom: float) -> list[str]:
    parts = []
    whole_minutes = until - since > 3 * 3600 * 1000
    for at in ticks(since, until):
        px = x(at)
        parts.append(f'<line x1="{px:.1f}" y1="{top - 4:g}" x2="{px:.1f}" y2="{bottom:g}" stroke="#e3e7ec"/>'
                     f'<text x="{px:.1f}" y="{top - 7:g}" text-anchor="middle" fill="#5b6573">'
                     f'{clock_text(at, not whole_minutes)}</text>')
    return parts


# -- timeline ------------------------------------------------------------------------------------------------

def spans(transitions: list[list], now: int) -> tuple[list[Span], list[Mark]]:
    """A job's history ([[status, epoch ms], ...]) as spans (queued, waiting in RUNNABLE, on a host) and marks
    (an attempt that failed and was retried, the job's failure or success); an unfinished job's last span
    lasts until `now`."""
    found: list[Span] = []
    marks: list[Mark] = []
    for index, (status, at) in enumerate(transitions):
        following = transitions[index + 1] if index + 1 < len(transitions) else None
        if status in SPAN_KINDS:
            end = following[1] if following else now
            found.append(Span(SPAN_KINDS[status], at, max(end, at)))
        if status == states.FAILED:
            marks.append(Mark("failed", at))
        elif status == states.SUCCEEDED:
            marks.append(Mark("succeeded", at))
        elif status == states.RUNNABLE and index and transitions[index - 1][0] in states.ON_HOST:
            marks.append(Mark("failed", at))  # the attempt before this retry failed
    return found, marks


def timeline(jobs: list[dict], since: int, until: int, link: Callable[[str], str]) -> Markup:
    """One row per job (oldest at the top): its spans between since and until, its marks, and its name linked
    to its page by `link(job_id)`. `jobs` have job_id, job_name, status and transitions."""
    since = fit(since, until, [at for job in jobs for _, at in job["transitions"][:1]])
    top = AXIS_HEIGHT + 4
    height = top + ROW_HEIGHT * max(len(jobs), 1) + 6
    right = WIDTH - 12
    scale = (right - LABEL_WIDTH) / max(until - since, 1)

    def x(at: int) -> float:
        return LABEL_WIDTH + (min(max(at, since), until) - since) * scale

    body = _time_axis(since, until, x, AXIS_HEIGHT, height - 4)
    for row, job in enumerate(reversed(jobs)):
        y = top + row * ROW_HEIGHT
        text = job["job_name"] + (f":{job['job_id'].rsplit(':', 1)[-1]}" if job.get("parent_id") else "")
        name = escape(text)
        label = name if len(text) <= 30 else escape(text[:29] + "…")
        body.append(f'<g class="job" data-job-id="{escape(job["job_id"])}" data-status="{escape(job["status"])}">'
                    f'<a href="{escape(link(job["job_id"]))}"><text x="4" y="{y + 12}" fill="#0a5bb5">{label}'
                    f'<title>{name} ({escape(job["job_id"])})</title></text></a>')
        found, marks = spans(job["transitions"], until)
        for span in found:
            if span.end < since or span.start > until:
                continue
            left, width = x(span.start), max(x(span.end) - x(span.start), 1.5)
            thick = 4 if span.kind == "queued" else 10
            body.append(f'<rect class="{span.kind}" x="{left:.1f}" y="{y + 9 - thick / 2:g}" width="{width:.1f}" '
                        f'height="{thick}" fill="{SPAN_COLOURS[span.kind]}"><title>{name}: {span.kind} '
                        f'{clock_text(span.start)}–{clock_text(span.end)} '
                        f'({(span.end - span.start) / 1000:.1f} s)</title></rect>')
        for mark in marks:
            if since <= mark.at <= until:
                body.append(_mark(mark, x(mark.at), y + 9, name))
        body.append("</g>")
    if not jobs:
        body.append(f'<text x="{LABEL_WIDTH}" y="{top + 12}" fill="#5b6573">No job was queued or ran in this '
                    "window.</text>")
    return _svg(height, body, "Timeline of the queue's jobs", "timeline")


def _mark(mark: Mark, x: float, y: float, name: str) -> str:
    what = "failed" if mark.kind == "failed" else "succeeded"
    if mark.kind == "failed":
        shape = (f'<path d="M{x - 4:.1f},{y - 4:g} L{x + 4:.1f},{y + 4:g} M{x + 4:.1f},{y - 4:g} '
                 f'L{x - 4:.1f},{y + 4:g}" stroke="{FAILED_COLOUR}" stroke-width="2.5"/>')
    else:
        shape = f'<circle cx="{x:.1f}" cy="{y:g}" r="3.5" fill="{SUCCEEDED_COLOUR}"/>'
    return f'<g class="mark {mark.kind}"><title>{name}: {what} at {clock_text(mark.at)}</title>{shape}</g>'


# -- array progress ------------------------------------------------------------------------------------------

def array_bar(counts: dict[str, int], size: int, width: int = 400) -> Markup:
    """A bar of an array's children, one part per status (in the order jobs walk them), as wide as its share."""
    total = max(size, sum(counts.values()), 1)
    body, left = [], 0.0
    for status, colour in STATUS_COLOURS.items():
        count = counts.get(status, 0)
        if not count:
            continue
        part = width * count / total
        body.append(f'<rect class="{status}" x="{left:.2f}" y="0" width="{part:.2f}" height="12" '
                    f'fill="{colour}"><title>{status}: {count} of {size}</title></rect>')
        left += part
    done = counts.get(states.SUCCEEDED, 0) + counts.get(states.FAILED, 0)
    label = f"Array progress: {done} of {size} children finished"
    return Markup(f'<svg class="array-bar" role="img" aria-label="{label}" viewBox="0 0 {width} 12" '
                  f'width="{width}" height="12" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
                  f'<rect x="0" y="0" width="{width}" height="12" fill="#eef1f4"/>' + "".join(body) + "</svg>")


# -- dependency graph ----------------------------------------------------------------------------------------

NODE_WIDTH, NODE_HEIGHT, NODE_GAP = 280, 34, 12
ARROW_MARKER = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
                'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#7d8896"/></marker></defs>')


def dependency_graph(job: dict, upstream: list[dict], downstream: list[dict], link: Callable[[str], str]) -> Markup:
    """The job in the middle, the jobs it depends on at the left and those that depend on it at the right,
    each a box coloured by its status and linked to its page, with arrows in the direction work flows.
    Each job is a JobSummary-like dict (jobId, jobName, status), with `type` (N_TO_N, SEQUENTIAL) on edges."""
    rows = max(len(upstream), len(downstream), 1)
    height = rows * (NODE_HEIGHT + NODE_GAP) + NODE_GAP
    middle_y = (height - NODE_HEIGHT) / 2
    columns = (10.0, (WIDTH - NODE_WIDTH) / 2, WIDTH - NODE_WIDTH - 10.0)
    body = [ARROW_MARKER]

    def top_of(index: int, count: int) -> float:
        block = count * (NODE_HEIGHT + NODE_GAP) - NODE_GAP
        return (height - block) / 2 + index * (NODE_HEIGHT + NODE_GAP)

    for side, jobs in (("upstream", upstream), ("downstream", downstream)):
        for index, other in enumerate(jobs):
            y = top_of(index, len(jobs))
            if side == "upstream":
                start, end = (columns[0] + NODE_WIDTH, y + NODE_HEIGHT / 2), (columns[1], middle_y + NODE_HEIGHT / 2)
            else:
                start, end = (columns[1] + NODE_WIDTH, middle_y + NODE_HEIGHT / 2), (columns[2], y + NODE_HEIGHT / 2)
            body.append(_edge(start, end, other.get("type")))
            body.append(_node(other, columns[0 if side == "upstream" else 2], y, link, side))
    body.append(_node(job, columns[1], middle_y, link, "this"))
    if not upstream:
        body.append(f'<text x="{columns[0]}" y="{middle_y + 21:g}" fill="#7d8896">depends on no job</text>')
    if not downstream:
        body.append(f'<text x="{columns[2]}" y="{middle_y + 21:g}" fill="#7d8896">no job depends on it</text>')
    return _svg(height, body, "Dependency graph of the job", "dependency-graph")


def _edge(start: tuple[float, float], end: tuple[float, float], kind: str | None) -> str:
    bend = (end[0] - start[0]) / 2
    path = (f'<path d="M{start[0]:.1f},{start[1]:.1f} C{start[0] + bend:.1f},{start[1]:.1f} '
            f'{end[0] - bend:.1f},{end[1]:.1f} {end[0]:.1f},{end[1]:.1f}" fill="none" stroke="#7d8896" '
            'stroke-width="1.5" marker-end="url(#arrow)"/>')
    if kind:
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 - 4)
        path += f'<text x="{mid[0]:.1f}" y="{mid[1]:.1f}" text-anchor="middle" fill="#5b6573">{escape(kind)}</text>'
    return path


def _node(job: dict, x: float, y: float, link: Callable[[str], str], side: str) -> str:
    status = job.get("status") or ""
    name = job.get("jobName") or job["jobId"]
    label = name if len(name) <= 34 else name[:33] + "…"
    fill = STATUS_COLOURS.get(status, "#e3e7ec")
    text = "#fff" if status in (states.RUNNING, states.SUCCEEDED, states.FAILED) else "#1d2430"
    stroke = ' stroke="#1d2430" stroke-width="2"' if side == "this" else ""
    return (f'<a class="node {side}" href="{escape(link(job["jobId"]))}" data-job-id="{escape(job["jobId"])}" '
            f'data-status="{escape(status)}"><title>{escape(name)} ({escape(job["jobId"])}): {escape(status)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="4" fill="{fill}"{stroke}/>'
            f'<text x="{x + 8:.1f}" y="{y + 14:.1f}" fill="{text}" font-weight="600">{escape(label)}</text>'
            f'<text x="{x + 8:.1f}" y="{y + 27:.1f}" fill="{text}">{escape(status or "unknown")}</text></a>')


# -- capacity ------------------------------------------------------------------------------------------------

CHART_HEIGHT = 170
LEGEND_HEIGHT = 18


def capacity_chart(name: str, samples: list[tuple[int, float, int | None]], maximum: float | None,
                   since: int, until: int) -> Markup:
    """vCPUs in use (a filled area) and desiredvCpus (a line) of one compute environment over [since, until],
    each held from one sample to the next (the last until `until`), under its maxvCpus (dashed)."""
    since = fit(since, until, [at for at, _, _ in samples[:1]])
    left, right, top, bottom = 50, WIDTH - 12, LEGEND_HEIGHT + AXIS_HEIGHT + 6, CHART_HEIGHT - 8
    values = [v for _, used, desired in samples for v in (used, desired) if v is not None]
    ceiling = max([maximum or 0, *values, 1])
    span = max(until - since, 1)

    def x(at: int) -> float:
        return left + (min(max(at, since), until) - since) * (right - left) / span

    def y(value: float) -> float:
        return bottom - value * (bottom - top) / ceiling

    body = _time_axis(since, until, x, LEGEND_HEIGHT + AXIS_HEIGHT, bottom)
    for value in sorted({0, ceiling / 2, ceiling}):
        body.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" fill="#5b6573">{value:g}</text>'
                    f'<line x1="{left}" y1="{y(value):.1f}" x2="{right}" y2="{y(value):.1f}" stroke="#eef1f4"/>')
    if maximum:
        body.append(f'<line class="max" x1="{left}" y1="{y(maximum):.1f}" x2="{right}" y2="{y(maximum):.1f}" '
                    f'stroke="{MAX_COLOUR}" stroke-dasharray="5,4"><title>maxvCpus {maximum:g}</title></line>')
    used = _steps([(at, value) for at, value, _ in samples], x, y, until)
    desired = _steps([(at, value) for at, _, value in samples if value is not None], x, y, until)
    if used:
        body.append(f'<path class="in-use" d="M{x(max(samples[0][0], since)):.1f},{bottom} L{used[1:]} '
                    f'L{x(until):.1f},{bottom} Z" fill="#2f7ed8" fill-opacity="0.25" stroke="#2f7ed8" '
                    'stroke-width="1.5"><title>vCPUs in use</title></path>')
    if desired:
        body.append(f'<path class="desired" d="{desired}" fill="none" stroke="{DESIRED_COLOUR}" stroke-width="2">'
                    "<title>desiredvCpus</title></path>")
    if not samples:
        body.append(f'<text x="{left + 8}" y="{(top + bottom) / 2:.0f}" fill="#5b6573">No samples in this window '
                    "yet (the scheduler writes one every few seconds).</text>")
    body.append(f'<text x="{left}" y="12" font-weight="600">{escape(name)}</text>'
                f'<rect x="{right - 330}" y="4" width="10" height="10" fill="#2f7ed8" fill-opacity="0.4"/>'
                f'<text x="{right - 316}" y="13">vCPUs in use</text>'
                f'<rect x="{right - 230}" y="8" width="14" height="2.5" fill="{DESIRED_COLOUR}"/>'
                f'<text x="{right - 212}" y="13">desiredvCpus</text>'
                f'<line x1="{right - 120}" y1="9" x2="{right - 104}" y2="9" stroke="{MAX_COLOUR}" '
                f'stroke-dasharray="5,4"/><text x="{right - 98}" y="13">maxvCpus</text>')
    return _svg(CHART_HEIGHT, body, f"vCPUs of compute environment {name} over time", "")


def _steps(points: list[tuple[int, float]], x: Callable[[int], float], y: Callable[[float], float],
           until: int) -> str:
    """An SVG path through (time, value) points held flat from one to the next, and the last until `until`."""
    if not points:
        return ""
    parts = [f"M{x(points[0][0]):.1f},{y(points[0][1]):.1f}"]
    for (_, before), (at, value) in pairwise(points):
        parts.append(f"L{x(at):.1f},{y(before):.1f} L{x(at):.1f},{y(value):.1f}")
    parts.append(f"L{x(until):.1f},{y(points[-1][1]):.1f}")
    return " ".join(parts)
