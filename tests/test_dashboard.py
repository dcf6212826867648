"""The read-only dashboard at `GET /`: pages over plain HTTP (content, escaping, bad input), the AWS API left as
it was, and a real browser (Debian's chromium through playwright): no console errors, live updates."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import make_queue, needs_docker, register, unique, wait_for_status, wait_until

CHROMIUM = os.environ.get("BATCHEMU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).resolve().parent.parent / "docs"
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def page(server, path: str, status: int = 200) -> str:
    response = requests.get(server.url + path, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    return response.text


def queue_page(name: str, **query) -> str:
    suffix = "&".join(f"{key}={value}" for key, value in query.items())
    return f"/_batchemu/dashboard/queues/{name}" + (f"?{suffix}" if suffix else "")


def job_page(job_id: str) -> str:
    return f"/_batchemu/dashboard/jobs/{job_id}"


def listed_job_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-job-id="([^"]+)">', html)


def counts_row(html: str, queue_name: str) -> dict[str, str]:
    row = re.search(rf'<tr data-queue="{re.escape(queue_name)}">(.*?)</tr>', html, re.DOTALL).group(1)
    return {status: re.sub(r"<[^>]+>", "", text).strip()
            for status, text in re.findall(r'data-status="(\w+)">(.*?)</td>', row, re.DOTALL)}


@pytest.fixture
def held_queue(batch_client) -> dict:
    """A queue whose compute environment is DISABLED: its jobs wait in RUNNABLE, Docker or not."""
    return make_queue(batch_client, ce_state="DISABLED")


def submit(batch_client, queue: dict, definition: dict, **extra) -> str:
    return batch_client.submit_job(jobName=extra.pop("jobName", unique("job")), jobQueue=queue["name"],
                                   jobDefinition=definition["jobDefinitionArn"], **extra)["jobId"]


# --- plain HTTP ------------------------------------------------------------------------------------------------

def test_overview_counts_each_status_per_queue_and_shows_compute_environment_vcpus(batch_client, batchemu_server,
                                                                                   held_queue):
    definition = register(batch_client)
    waiting = [submit(batch_client, held_queue, definition) for _ in range(3)]
    batch_client.cancel_job(jobId=waiting[0], reason="not needed")
    wait_for_status(batch_client, waiting[0], ("FAILED",))
    for job_id in waiting[1:]:
        wait_for_status(batch_client, job_id, ("RUNNABLE",))

    html = page(batchemu_server, "/")
    assert counts_row(html, held_queue["name"]) == {
        "SUBMITTED": "0", "PENDING": "0", "RUNNABLE": "2", "STARTING": "0", "RUNNING": "0", "SUCCEEDED": "0",
        "FAILED": "1"}
    assert f'href="{queue_page(held_queue["name"], status="RUNNABLE")}"' in html
    ce_row = re.search(rf'<tr data-compute-environment="{held_queue["ce"]}">(.*?)</tr>', html, re.DOTALL).group(1)
    fields = dict(re.findall(r'data-field="([\w-]+)">([^<]*)</td>', ce_row))
    assert fields == {"in-use": "0", "desired": "0", "max": "4"}
    assert "DISABLED" in ce_row


def test_queue_page_lists_jobs_newest_first_by_status_a_page_at_a_time(batch_client, batchemu_server, held_queue):
    definition = register(batch_client)
    submitted = [submit(batch_client, held_queue, definition) for _ in range(60)]
    cancelled = submitted[10:13]
    for job_id in cancelled:
        batch_client.cancel_job(jobId=job_id, reason="no longer wanted")
    for job_id in cancelled:
        wait_for_status(batch_client, job_id, ("FAILED",))
    # The others settle in RUNNABLE by the scheduler's next pass (a burst of submits shares one).
    waiting = [job_id for job_id in submitted if job_id not in cancelled]
    wait_until(lambda: all(job["status"] == "RUNNABLE" for start in (0, 50) for job in
                           batch_client.describe_jobs(jobs=waiting[start:start + 50])["jobs"]))

    first = page(batchemu_server, queue_page(held_queue["name"]))
    assert listed_job_ids(first) == submitted[::-1][:50]
    older = re.search(r'<a href="([^"]+)" rel="next">', first).group(1).replace("&amp;", "&")
    assert listed_job_ids(page(batchemu_server, older)) == submitted[::-1][50:]
    assert "RUNNABLE (57)" in first and "FAILED (3)" in first

    failed = page(batchemu_server, queue_page(held_queue["name"], status="FAILED"))
    assert listed_job_ids(failed) == cancelled[::-1]
    assert "no longer wanted" in failed
    assert 'rel="next"' not in failed


def test_bad_input_answers_an_html_page_never_a_500(batch_client, batchemu_server, held_queue):
    bad_status = page(batchemu_server, queue_page(held_queue["name"], status="DONE"), 400)
    assert "Unknown status &#39;DONE&#39;" in bad_status
    assert "Invalid nextToken" in page(batchemu_server, queue_page(held_queue["name"], next="garbage"), 400)
    assert "Job queue no-such-queue does not exist" in page(batchemu_server, queue_page("no-such-queue"), 404)
    assert "Job no-such-job does not exist" in page(batchemu_server, job_page("no-such-job"), 404)
    assert page(batchemu_server, job_page(f"%3Cb%3E{'x' * 3000}"), 404).count("<b>") == 0
    assert "No dashboard page" in page(batchemu_server, "/_batchemu/dashboard/elsewhere", 404)
    # Error pages do not poll.
    assert "hx-trigger" not in bad_status


def test_user_text_is_escaped_on_every_page(batch_client, batchemu_server, held_queue):
    definition = register(batch_client)
    job_id = submit(batch_client, held_queue, definition)
    batch_client.cancel_job(jobId=job_id, reason=HOSTILE)
    wait_for_status(batch_client, job_id, ("FAILED",))
    for path in (job_page(job_id), queue_page(held_queue["name"], status="FAILED")):
        html = page(batchemu_server, path)
        assert ESCAPED in html
        assert HOSTILE not in html


def test_job_page_shows_dependencies_and_array_children_with_links(batch_client, batchemu_server, held_queue):
    definition = register(batch_client)
    parent = submit(batch_client, held_queue, definition, arrayProperties={"size": 3})
    dependent = submit(batch_client, held_queue, definition, dependsOn=[{"jobId": parent}])

    parent_html = page(batchemu_server, job_page(parent))
    assert "Array children (3)" in parent_html
    assert sorted(listed_job_ids(parent_html)) == [f"{parent}:{i}" for i in range(3)]
    assert f'href="{job_page(parent)}:1"' in parent_html

    child_html = page(batchemu_server, job_page(f"{parent}:1"))
    assert f'href="{job_page(parent)}"' in child_html and "(index 1)" in child_html

    dependent_html = page(batchemu_server, job_page(dependent))
    assert f'<a href="{job_page(parent)}" class="mono">{parent}</a>' in dependent_html
    assert f'href="{queue_page(held_queue["name"])}"' in dependent_html


def test_the_aws_api_answers_as_before_around_the_dashboard(batchemu_server):
    url = batchemu_server.url
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        response = requests.request(method, url + "/", data=b"{}", timeout=30)
        assert (response.status_code, response.headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")
        assert response.json()["__type"] == "UnknownOperationException"
    not_routed = requests.get(url + "/nope", timeout=30)
    assert (not_routed.status_code, not_routed.json()["__type"]) == (404, "UnknownOperationException")
    wrong_method = requests.get(url + "/v1/describejobqueues", timeout=30)
    assert (wrong_method.status_code, wrong_method.json()["__type"]) == (405, "MethodNotAllowedException")
    assert requests.post(url + "/v1/describejobqueues", json={}, timeout=30).json() == {"jobQueues": []}
    assert requests.get(url + "/_batchemu/health", timeout=30).json()["service"] == "batchemu"
    head = requests.head(url + "/", timeout=30)
    assert head.status_code == 200 and head.headers["Content-Type"].startswith("text/html")
    # Read-only: other methods on dashboard paths reach the protocol, which routes nothing there.
    posted = requests.post(url + "/_batchemu/dashboard/queues/q", timeout=30)
    assert (posted.status_code, posted.json()["__type"]) == (404, "UnknownOperationException")


def test_serve_prints_the_dashboard_url(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "batchemu", "serve", "--port", "0", "--state", ":memory:",
                                "--no-scheduler"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        process.stdout.readline()
        line = process.stdout.readline()
        assert re.fullmatch(r"dashboard: http://127\.0\.0\.1:\d+/\n", line), line
        response = requests.get(line.split(": ", 1)[1].strip(), timeout=10)
        assert response.status_code == 200 and "<h1>Overview</h1>" in response.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
        process.wait()


@needs_docker
def test_job_page_shows_exit_code_attempts_and_the_escaped_log(batch_client, batchemu_server, queue):
    definition = register(batch_client, ["sh", "-c", f"echo '{HOSTILE}'; exit 3"])
    job_id = submit(batch_client, queue, definition)
    job = wait_for_status(batch_client, job_id)
    assert job["status"] == "FAILED"
    stream = job["container"]["logStreamName"]
    html = page(batchemu_server, job_page(job_id))
    assert '<span id="job-status" class="status FAILED">FAILED</span>' in html
    assert '<dd id="exit-code">3</dd>' in html
    assert re.search(r'<table id="attempts">.*<td class="num">3</td>.*' + re.escape(stream), html, re.DOTALL)
    log = re.search(r'<pre class="log" id="log">(.*?)</pre>', html, re.DOTALL).group(1)
    assert ESCAPED in log and HOSTILE not in html
    assert counts_row(page(batchemu_server, "/"), queue["name"])["FAILED"] == "1"


# --- a real browser -----------------------------------------------------------------------------------------------

def _browser_missing() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"needs chromium at {CHROMIUM} (run `make browser` as root, or set BATCHEMU_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright package (pip install -e '.[test]')"
    return None


needs_browser = pytest.mark.skipif(_browser_missing() is not None, reason=_browser_missing() or "")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def tab(browser):
    """A fresh page whose console errors and failed requests are collected in `tab.problems`."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda message: message.type == "error" and problems.append(message.text))
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    opened.problems = problems
    yield opened
    context.close()


def screenshot(tab, tmp_path: Path, name: str) -> None:
    """A PNG of the page; copied to docs/ (the dashboard page) when BATCHEMU_UPDATE_SCREENSHOTS=1, so that an
    ordinary test run leaves the checkout unchanged."""
    path = tmp_path / name
    tab.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("BATCHEMU_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / name)


@needs_browser
@needs_docker
def test_every_page_renders_without_console_errors(batch_client, batchemu_server, queue, tab, tmp_path):
    from playwright.sync_api import expect
    other = make_queue(batch_client, max_vcpus=2, ce_state="DISABLED")
    script = f"for i in 1 2 3; do echo \"step $i of 3: ok\"; done; echo '{HOSTILE}'"
    echo = register(batch_client, ["sh", "-c", script])
    failing = register(batch_client, ["sh", "-c", "echo 'about to fail'; exit 2"])
    done = submit(batch_client, queue, echo, jobName="render-report")
    broken = submit(batch_client, queue, failing, jobName="flaky-step")
    array = submit(batch_client, queue, echo, jobName="fan-out", arrayProperties={"size": 3})
    for job_id in (done, broken, array):
        wait_for_status(batch_client, job_id)
    for _ in range(2):
        submit(batch_client, other, echo, jobName="waits-for-capacity")

    tab.goto(batchemu_server.url + "/")
    expect(tab.locator(f'tr[data-queue="{queue["name"]}"] td[data-status="SUCCEEDED"]')).to_have_text("2")
    expect(tab.locator(f'tr[data-queue="{other["name"]}"] td[data-status="RUNNABLE"]')).to_have_text("2")
    screenshot(tab, tmp_path, "dashboard-overview.png")

    tab.click(f'tr[data-queue="{queue["name"]}"] a')
    expect(tab.locator("h1")).to_have_text(f"Job queue {queue['name']}")
    expect(tab.locator("table.jobs tbody tr")).to_have_count(3)
    screenshot(tab, tmp_path, "dashboard-queue.png")

    tab.click(f'tr[data-job-id="{done}"] a')
    expect(tab.locator("#job-status")).to_have_text("SUCCEEDED")
    expect(tab.locator("#log")).to_contain_text(HOSTILE)  # shown as text, never run
    screenshot(tab, tmp_path, "dashboard-job.png")

    for path in (job_page(array), job_page(f"{array}:2"), job_page(broken),
                 queue_page(other["name"], status="RUNNABLE")):
        tab.goto(batchemu_server.url + path)
        expect(tab.locator("h1")).to_be_visible()
    tab.wait_for_timeout(2500)  # one refresh of the live part by htmx
    assert tab.problems == []


@needs_browser
@needs_docker
def test_an_open_job_page_shows_new_log_lines_and_the_end_without_a_reload(batch_client, batchemu_server, queue,
                                                                          tab):
    from playwright.sync_api import expect
    marker = unique("line")
    definition = register(batch_client, ["sh", "-c", f"sleep 1; echo {marker}; sleep 4"])
    job_id = submit(batch_client, queue, definition)
    tab.goto(batchemu_server.url + job_page(job_id))
    expect(tab.locator("#job-status")).not_to_have_text("SUCCEEDED")
    tab.evaluate("window.loadedOnce = true")  # gone if the page were reloaded
    expect(tab.locator("#log")).to_contain_text(marker, timeout=30_000)
    expect(tab.locator("#job-status")).to_have_text("RUNNING")
    expect(tab.locator("#job-status")).to_have_text("SUCCEEDED", timeout=30_000)
    expect(tab.locator("#exit-code")).to_have_text("0")
    assert tab.evaluate("window.loadedOnce") is True
    assert tab.problems == []
