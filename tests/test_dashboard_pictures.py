"""The dashboard's pictures (a queue's timeline, a job's dependency graph, an array's progress bar, a compute
environment's capacity over time) and its Cancel and Terminate buttons: the pure drawing and the store's reads
they need, then pages over plain HTTP, then a real browser (Debian's chromium), all with real jobs on the
simulate executor, which walks the same states as Docker without an engine."""

from __future__ import annotations

import re

import pytest
import requests

from batchemu.config import Config
from batchemu.http.dashboard import pictures
from tests import test_dashboard
from tests.conftest import describe, make_queue, register, skip_without_docker, wait_for_status, wait_until
from tests.test_dashboard import job_page, needs_browser, queue_page, screenshot
from tests.waiting import wait_for

browser, tab = test_dashboard.browser, test_dashboard.tab  # the browser tests' fixtures, shared

CANCELLED = "Cancelled from the batchemu dashboard"
TERMINATED = "Terminated from the batchemu dashboard"


@pytest.fixture
def batchemu_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate", simulate_seconds=0.2)


def simulated(batch_client, *, seconds: float = 0.2, exit_code: int = 0, **extra) -> dict:
    """A job definition whose runs last `seconds` and exit `exit_code` on either executor: the simulate executor
    reads the two variables, Docker runs the command in the test image."""
    environment = [{"name": "BATCHEMU_SIMULATE_SECONDS", "value": str(seconds)},
                   {"name": "BATCHEMU_SIMULATE_EXIT_CODE", "value": str(exit_code)}]
    return register(batch_client, ["sh", "-c", f"sleep {seconds}; exit {exit_code}"],
                    containerProperties={"environment": environment}, **extra)


def submit(batch_client, queue: dict, definition: dict, name: str, **extra) -> str:
    return batch_client.submit_job(jobName=name, jobQueue=queue["name"],
                                   jobDefinition=definition["jobDefinitionArn"], **extra)["jobId"]


def page(server, path: str, status: int = 200) -> str:
    response = requests.get(server.url + path, timeout=30)
    assert response.status_code == status, response.text
    return response.text


def timeline_rows(html: str) -> dict[str, str]:
    """job id -> the SVG of its row in the queue's timeline."""
    svg = re.search(r'<svg id="timeline".*?</svg>', html, re.DOTALL).group(0)
    return dict(re.findall(r'<g class="job" data-job-id="([^"]+)"[^>]*>(.*?)</g>(?=<g class="job"|</svg>)',
                           svg, re.DOTALL))


def graph_nodes(html: str) -> dict[str, tuple[str, str]]:
    """job id -> (side: upstream, this or downstream; status) of the nodes of a job's dependency graph."""
    svg = re.search(r'<svg id="dependency-graph".*?</svg>', html, re.DOTALL).group(0)
    return {job_id: (side, status) for side, job_id, status in re.findall(
        r'<a class="node (\w+)" href="[^"]+" data-job-id="([^"]+)" data-status="(\w*)">', svg)}


def array_bar_parts(html: str, parent: str) -> dict[str, int]:
    """status -> children counted in the array bar next to (or under) the job `parent`."""
    bar = re.search(r'<svg class="array-bar".*?</svg>', html[html.index(parent):], re.DOTALL).group(0)
    return {status: int(count) for status, count in re.findall(r'<title>(\w+): (\d+) of \d+</title>', bar)}


def token_of(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


# --- the drawing, and the store's reads ---------------------------------------------------------------------

def test_spans_of_a_job_retried_once_then_failed():
    history = [["SUBMITTED", 0], ["PENDING", 10], ["RUNNABLE", 20], ["STARTING", 120], ["RUNNING", 150],
               ["RUNNABLE", 400], ["STARTING", 900], ["RUNNING", 950], ["FAILED", 1200]]
    spans, marks = pictures.spans(history, now=5000)
    assert [(s.kind, s.start, s.end) for s in spans] == [
        ("queued", 0, 10), ("queued", 10, 20), ("waiting", 20, 120), ("running", 120, 150), ("running", 150, 400),
        ("waiting", 400, 900), ("running", 900, 950), ("running", 950, 1200)]
    assert [(m.kind, m.at) for m in marks] == [("failed", 400), ("failed", 1200)]
    running, marks = pictures.spans([["RUNNABLE", 0], ["STARTING", 5], ["RUNNING", 7]], now=99)
    assert running[-1] == pictures.Span("running", 7, 99) and marks == []


def test_a_time_axis_has_round_ticks_and_names_are_escaped():
    assert pictures.ticks(1_000, 61_000) == list(range(10_000, 61_000, 10_000))
    assert len(pictures.ticks(0, 3_600_000)) <= pictures.MAX_TICKS + 1
    hostile = {"job_id": "j1", "job_name": "<script>x</script>", "status": "RUNNING",
               "transitions": [["RUNNABLE", 0], ["RUNNING", 10]]}
    svg = pictures.timeline([hostile], 0, 1000, lambda job_id: f"/jobs/{job_id}")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    graph = pictures.dependency_graph({"jobId": "j1", "jobName": "<b>", "status": "RUNNING"}, [], [], str)
    assert "<b>" not in graph and "no job depends on it" in graph


# --- pages over plain HTTP ------------------------------------------------------------------------------------

def test_a_queue_timeline_shows_each_jobs_wait_run_and_failures(batch_client, batchemu_server):
    queue = make_queue(batch_client)
    retried = submit(batch_client, queue, simulated(batch_client, exit_code=3, retryStrategy={"attempts": 2}),
                     "retried-then-failed")
    good = submit(batch_client, queue, simulated(batch_client), "succeeds")
    for job_id in (retried, good):
        wait_for_status(batch_client, job_id)
    held = make_queue(batch_client, ce_state="DISABLED")
    waiting = submit(batch_client, held, simulated(batch_client), "waits")
    wait_for_status(batch_client, waiting, ("RUNNABLE",))
    assert describe(batch_client, retried)["status"] == "FAILED"
    assert len(describe(batch_client, retried)["attempts"]) == 2

    rows = timeline_rows(page(batchemu_server, queue_page(queue["name"], window="5m")))
    assert set(rows) == {retried, good}
    assert rows[retried].count('class="running"') == 4  # STARTING and RUNNING of each attempt
    assert rows[retried].count('class="waiting"') == 2
    assert rows[retried].count('class="mark failed"') == 2  # the first attempt, then the job
    assert f'href="{job_page(retried)}"' in rows[retried] and "retried-then-failed" in rows[retried]
    assert 'class="mark succeeded"' in rows[good] and 'class="mark failed"' not in rows[good]
    held_rows = timeline_rows(page(batchemu_server, queue_page(held["name"])))
    assert list(held_rows) == [waiting]
    assert 'class="waiting"' in held_rows[waiting] and 'class="running"' not in held_rows[waiting]
    assert "Unknown window" in page(batchemu_server, queue_page(held["name"], window="2y"), 400)
    # Ten minutes on, the finished jobs are out of a 5-minute window; the waiting one is still in it.
    real_clock = batchemu_server.ctx.clock
    batchemu_server.ctx.clock = lambda: real_clock() + 600_000
    assert timeline_rows(page(batchemu_server, queue_page(queue["name"], window="5m"))) == {}
    assert "No job was queued or ran in this window" in page(batchemu_server, queue_page(queue["name"], window="5m"))
    assert list(timeline_rows(page(batchemu_server, queue_page(held["name"], window="5m")))) == [waiting]
    assert set(timeline_rows(page(batchemu_server, queue_page(queue["name"], window="15m")))) == {retried, good}


def test_a_job_page_draws_what_it_depends_on_and_what_depends_on_it(batch_client, batchemu_server):
    held = make_queue(batch_client, ce_state="DISABLED")
    definition = simulated(batch_client)
    first = submit(batch_client, held, definition, "extract")
    middle = submit(batch_client, held, definition, "transform", dependsOn=[{"jobId": first}])
    last = [submit(batch_client, held, definition, f"load-{i}", dependsOn=[{"jobId": middle}]) for i in range(2)]
    wait_for_status(batch_client, first, ("RUNNABLE",))
    for job_id in (middle, *last):
        wait_for_status(batch_client, job_id, ("PENDING",))

    html = page(batchemu_server, job_page(middle))
    assert graph_nodes(html) == {first: ("upstream", "RUNNABLE"), middle: ("this", "PENDING"),
                                 last[0]: ("downstream", "PENDING"), last[1]: ("downstream", "PENDING")}
    for job_id in (first, *last):
        assert f'href="{job_page(job_id)}" data-job-id="{job_id}"' in html
    assert "depends on no job" in page(batchemu_server, job_page(first))


def test_array_progress_shows_the_childrens_statuses_on_the_parent_and_in_the_queue_list(batch_client,
                                                                                          batchemu_server):
    held = make_queue(batch_client, ce_state="DISABLED")
    parent = submit(batch_client, held, simulated(batch_client), "fan-out", arrayProperties={"size": 5})
    wait_until(lambda: describe(batch_client, parent)["arrayProperties"]["statusSummary"].get("RUNNABLE") == 5)
    for index in (0, 1):
        batch_client.cancel_job(jobId=f"{parent}:{index}", reason="not needed")
    wait_until(lambda: describe(batch_client, parent)["arrayProperties"]["statusSummary"].get("FAILED") == 2)

    assert array_bar_parts(page(batchemu_server, job_page(parent)), 'id="array-progress"') == {
        "RUNNABLE": 3, "FAILED": 2}
    listed = page(batchemu_server, queue_page(held["name"]))
    assert array_bar_parts(listed, f'<tr data-job-id="{parent}">') == {"RUNNABLE": 3, "FAILED": 2}


def test_the_overview_charts_each_compute_environments_vcpus_in_use_and_desired(batch_client, batchemu_server):
    queue = make_queue(batch_client, max_vcpus=4)
    definition = simulated(batch_client, seconds=3, vcpus="2")
    jobs = [submit(batch_client, queue, definition, f"busy-{i}") for i in range(2)]
    wait_for_status(batch_client, jobs[0], ("RUNNING",))

    def busy_sample() -> list:
        with batchemu_server.store.read() as tx:
            return tx.capacity_samples.since(0).get(queue["ceArn"], [])
    wait_for(busy_sample, lambda samples: any(used == 4 and desired == 4 for _, used, desired in samples),
             "a capacity sample with 4 vCPUs in use and desired", timeout=15)
    for job_id in jobs:
        wait_for_status(batch_client, job_id)
    html = page(batchemu_server, "/?window=5m")
    chart = re.search(rf'data-compute-environment="{queue["ce"]}"><svg.*?</svg>', html, re.DOTALL).group(0)
    assert 'class="in-use"' in chart and 'class="desired"' in chart and 'class="max"' in chart
    assert f"vCPUs of compute environment {queue['ce']} over time" in chart


def test_cancel_and_terminate_buttons_act_through_the_api_with_the_servers_token(batch_client, batchemu_server):
    held = make_queue(batch_client, ce_state="DISABLED")
    queue = make_queue(batch_client)
    waiting = submit(batch_client, held, simulated(batch_client), "to-cancel")
    running = submit(batch_client, queue, simulated(batch_client, seconds=120), "to-terminate")
    wait_for_status(batch_client, waiting, ("RUNNABLE",))
    wait_for_status(batch_client, running, ("RUNNING",))

    html = page(batchemu_server, job_page(waiting))
    assert 'id="cancel-job"' in html and 'id="terminate-job"' in html
    running_html = page(batchemu_server, job_page(running))
    assert 'id="cancel-job"' not in running_html and 'id="terminate-job"' in running_html
    url = batchemu_server.url + job_page(waiting) + "/cancel"
    for form in ({}, {"token": "guessed"}):  # a page of another site cannot read the token
        refused = requests.post(url, data=form, timeout=30, allow_redirects=False)
        assert refused.status_code == 403 and "token" in refused.text
    assert describe(batch_client, waiting)["status"] == "RUNNABLE"

    done = requests.post(url, data={"token": token_of(html)}, timeout=30, allow_redirects=False)
    assert done.status_code == 303 and done.headers["Location"].endswith(job_page(waiting))
    cancelled = describe(batch_client, waiting)
    assert (cancelled["status"], cancelled["statusReason"], cancelled["isCancelled"]) == ("FAILED", CANCELLED, True)
    requests.post(batchemu_server.url + job_page(running) + "/terminate", data={"token": token_of(running_html)},
                  timeout=30)
    terminated = wait_for_status(batch_client, running, ("FAILED",))
    assert (terminated["statusReason"], terminated["isTerminated"]) == (TERMINATED, True)
    assert "id=\"terminate-job\"" not in page(batchemu_server, job_page(running))  # finished: no buttons
    missing = requests.post(batchemu_server.url + job_page("no-such-job") + "/cancel", data={"token": token_of(html)},
                            timeout=30)
    assert missing.status_code == 400 and "Job no-such-job does not exist" in missing.text


def test_a_read_only_dashboard_shows_no_buttons_and_refuses_them(batch_client, batchemu_server):
    held = make_queue(batch_client, ce_state="DISABLED")
    waiting = submit(batch_client, held, simulated(batch_client), "stays")
    wait_for_status(batch_client, waiting, ("RUNNABLE",))
    token = token_of(page(batchemu_server, job_page(waiting)))
    batchemu_server.config.dashboard_read_only = True
    html = page(batchemu_server, job_page(waiting))
    assert 'id="cancel-job"' not in html and "(read-only)" in html
    refused = requests.post(batchemu_server.url + job_page(waiting) + "/cancel", data={"token": token}, timeout=30)
    assert refused.status_code == 403 and "read-only" in refused.text
    assert describe(batch_client, waiting)["status"] == "RUNNABLE"


def test_serve_takes_the_read_only_flag_and_its_environment_variable(monkeypatch):
    from batchemu.cli import build_parser
    monkeypatch.delenv("BATCHEMU_DASHBOARD_READ_ONLY", raising=False)
    assert build_parser().parse_args(["serve", "--dashboard-read-only"]).dashboard_read_only is True
    assert build_parser().parse_args(["serve"]).dashboard_read_only is False
    monkeypatch.setenv("BATCHEMU_DASHBOARD_READ_ONLY", "1")
    assert Config().dashboard_read_only is True
    assert build_parser().parse_args(["serve"]).dashboard_read_only is True


# --- a real browser -------------------------------------------------------------------------------------------

@needs_browser
# The pictures of real jobs: walked by the simulate executor, and run as containers on the Docker Engine.
@pytest.mark.parametrize("batchemu_config", [
    pytest.param(Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="simulate"), id="simulate"),
    pytest.param(Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5, executor="docker"), id="docker",
                 marks=[pytest.mark.docker, skip_without_docker])])
def test_the_pictures_in_a_browser_and_its_buttons_cancel_and_terminate(batch_client, batchemu_server, tab,
                                                                        tmp_path):
    from playwright.sync_api import expect
    batchemu_server.config.scale_down_delay = 3  # desiredvCpus comes down within the capacity chart
    queue = make_queue(batch_client, max_vcpus=4)
    quick, slow = simulated(batch_client, seconds=1.5, vcpus="1"), simulated(batch_client, seconds=4, vcpus="2")
    flaky = simulated(batch_client, seconds=1, exit_code=2, retryStrategy={"attempts": 2})
    extract = submit(batch_client, queue, quick, "extract")
    transform = submit(batch_client, queue, slow, "transform", dependsOn=[{"jobId": extract}])
    loads = [submit(batch_client, queue, quick, f"load-{part}", dependsOn=[{"jobId": transform}])
             for part in ("eu", "us")]
    flaky_job = submit(batch_client, queue, flaky, "flaky-report")
    fan_out = submit(batch_client, queue, simulated(batch_client, seconds=2.5), "fan-out",
                     arrayProperties={"size": 12})
    wait_for_status(batch_client, transform, ("RUNNING",))

    tab.goto(batchemu_server.url + job_page(transform))
    expect(tab.locator(f'#dependency-graph a.node[data-job-id="{extract}"]')).to_have_attribute(
        "data-status", "SUCCEEDED")
    expect(tab.locator("#dependency-graph a.node.downstream")).to_have_count(2)
    screenshot(tab, tmp_path, "dashboard-graph.png")
    tab.click(f'#dependency-graph a.node[data-job-id="{extract}"]')
    expect(tab.locator("h1")).to_have_text("Job extract")

    tab.goto(batchemu_server.url + job_page(fan_out))
    expect(tab.locator("#array-progress rect.SUCCEEDED")).to_be_visible(timeout=30_000)
    screenshot(tab, tmp_path, "dashboard-array.png")
    tab.evaluate("window.loadedOnce = true")  # gone if the page were reloaded
    expect(tab.locator("#array-progress rect.SUCCEEDED title")).to_have_text("SUCCEEDED: 12 of 12", timeout=60_000)
    assert tab.evaluate("window.loadedOnce") is True  # the bar followed the children by htmx's refresh

    for job_id in (*loads, flaky_job, fan_out):
        wait_for_status(batch_client, job_id, timeout=90)
    tab.goto(batchemu_server.url + queue_page(queue["name"], window="5m"))
    expect(tab.locator(f'#timeline g.job[data-job-id="{flaky_job}"] g.mark.failed')).to_have_count(2)
    expect(tab.locator("#timeline g.job")).to_have_count(17)  # 5 jobs and 12 children; not the array parent
    screenshot(tab, tmp_path, "dashboard-timeline.png")

    def samples() -> list:
        with batchemu_server.store.read() as tx:
            return tx.capacity_samples.since(0).get(queue["ceArn"], [])
    wait_for(samples, lambda found: any(used >= 2 for _, used, _ in found) and found[-1][2] == 0,
             "capacity samples of the running jobs, then of desiredvCpus scaled in", timeout=20)
    tab.goto(batchemu_server.url + "/?window=5m")
    expect(tab.locator(f'div.capacity[data-compute-environment="{queue["ce"]}"] path.in-use')).to_be_visible()
    screenshot(tab, tmp_path, "dashboard-capacity.png")

    held = make_queue(batch_client, ce_state="DISABLED")
    waiting = submit(batch_client, held, quick, "to-cancel")
    running = submit(batch_client, queue, simulated(batch_client, seconds=120), "to-terminate")
    wait_for_status(batch_client, waiting, ("RUNNABLE",))
    wait_for_status(batch_client, running, ("RUNNING",))
    tab.goto(batchemu_server.url + job_page(waiting))
    tab.click("#cancel-job")
    expect(tab.locator("#job-status")).to_have_text("FAILED")
    assert describe(batch_client, waiting)["isCancelled"] is True
    tab.goto(batchemu_server.url + job_page(running))
    expect(tab.locator("#cancel-job")).to_have_count(0)
    tab.click("#terminate-job")
    expect(tab.locator("#job-status")).to_have_text("FAILED", timeout=30_000)
    terminated = describe(batch_client, running)
    assert (terminated["statusReason"], terminated["isTerminated"]) == (TERMINATED, True)
    assert tab.problems == []
