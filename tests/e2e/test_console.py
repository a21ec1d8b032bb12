"""The web console in a real browser: Debian's headless Chromium driven by Playwright, against the sandbox.

The console is served the way `t2v console` serves it, from the sandbox's endpoints file; what is
asserted is what a person sees: the form's choices and errors, the status and progress moving, a
<video> that plays with the requested dimensions and length, a cancel that takes (and one that
cannot, said in red), uploaded prompt files turning into jobs with thumbnails that are not black,
re-run, copy, a download the browser saves, a notification, a 390 px wide dark page, and a console
that says "reconnecting" while its API is gone or hung and follows it to a new address.
`T2V_SCREENSHOT_DIR=docs` (`make screenshots`) keeps the README's pictures.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashscope_emulator.png import solid_png
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright
from t2v_client import ApiClient, sandbox_place
from t2v_console.command import RunningConsole, serve
from t2v_sandbox.user_sandbox import UserSandbox, config_for

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(os.environ.get("T2V_E2E_TEMPLATE") or ROOT / "template.yaml")
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make browser` installs it
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JOB_TIMEOUT_MS = 45_000
expect.set_options(timeout=JOB_TIMEOUT_MS)  # a loaded 2-core machine: generous, yet bounded


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserSandbox]:
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the browser tests run against the emulator only (unset DASHSCOPE_API_KEY)")
    config = config_for(
        TEMPLATE,
        work_dir=tmp_path_factory.mktemp("console-sandbox"),
        pending_seconds=1.0,
        running_seconds=3.0,
        write_endpoints=True,  # the console finds the sandbox the way `t2v console` does
    )
    with UserSandbox(config) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def console(sb: UserSandbox) -> Iterator[RunningConsole]:
    endpoints = sb.work_dir / "endpoints.json"
    running = serve(sandbox_place(endpoints), endpoints_file=endpoints)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as pw:
        context = _launch(pw, tmp_path_factory.mktemp("chromium-profile"))
        try:
            yield context
        finally:
            context.close()


def _launch(pw: Playwright, profile: Path) -> BrowserContext:
    return pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1280, "height": 860},
    )


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    tab = browser.new_page()
    tab.set_default_timeout(JOB_TIMEOUT_MS)
    try:
        yield tab
    finally:
        tab.close()


def screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("T2V_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


def submit_from_form(page: Page, console: RunningConsole, prompt: str, size: str, duration: str) -> str:
    page.goto(f"{console.url}/new")
    page.fill("#prompt", prompt)
    page.select_option("#size", size)
    page.select_option("#duration", duration)
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    return page.url.rsplit("/", 1)[-1]


def test_submit_from_the_form_watch_progress_and_play_the_video(
    page: Page, console: RunningConsole, tmp_path: Path
) -> None:
    # Given the form, a 640*480 5 s request
    job_id = submit_from_form(page, console, f"console fox {uuid.uuid4().hex[:6]}", "640*480", "5")

    # Then the job page follows it live: statuses and progress move without a reload
    statuses: list[str] = []
    fractions: list[float] = []
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        status = page.inner_text("#status")
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        value = page.evaluate(
            "() => { const p = document.getElementById('progress');"
            " return p && p.hasAttribute('value') ? p.value : null; }"
        )
        if value is not None:
            fractions.append(float(value))
        if status in {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}:
            break
        page.wait_for_timeout(250)
    assert statuses[-1] == "SUCCEEDED", statuses
    assert len(statuses) >= 3, f"saw too few live updates: {statuses}"
    # The bar follows the API's progress block: it only moves forward, and it did move
    assert fractions == sorted(fractions), f"progress went backwards: {fractions}"
    assert len(set(fractions)) >= 2, f"progress never moved: {fractions}"
    timeline = page.locator("#timeline li")
    expect(timeline.first).to_contain_text("ACCEPTED")
    expect(timeline.last).to_contain_text("SUCCEEDED")

    # And the video plays with the requested dimensions and duration
    video = page.locator("#video")
    expect(video).to_be_visible()
    page.wait_for_function("() => document.getElementById('video').readyState >= 1")
    facts = page.evaluate(
        "() => { const v = document.getElementById('video');"
        " return {w: v.videoWidth, h: v.videoHeight, d: v.duration, error: v.error && v.error.code}; }"
    )
    assert facts["error"] is None
    assert (facts["w"], facts["h"]) == (640, 480)
    assert abs(facts["d"] - 5.0) < 0.5, facts
    page.evaluate("() => document.getElementById('video').play()")
    page.wait_for_function("() => document.getElementById('video').currentTime > 0.2")
    page.evaluate("() => document.getElementById('video').pause()")
    assert job_id in page.inner_text("body")
    screenshot(page, "console-job.png", tmp_path)


def test_cancel_a_pending_job(page: Page, console: RunningConsole, sb: UserSandbox) -> None:
    # Given a job whose provider task stays PENDING
    emulator = sb.emulator
    saved = emulator.config.pending_seconds
    emulator.config.pending_seconds = 60.0
    try:
        submit_from_form(page, console, f"console parade {uuid.uuid4().hex[:6]}", "640*360", "5")
        expect(page.locator("#status")).to_have_text("PENDING")
    finally:
        emulator.config.pending_seconds = saved

    # When the user presses Cancel
    page.click("#cancel")

    # Then the page shows it CANCELED, and the button is gone; the user's own cancel is good news,
    # in a green notice, and the job's "canceled by the user" is not shown as an error
    expect(page.locator("#status")).to_have_text("CANCELED")
    expect(page.locator("#cancel")).to_have_count(0)
    expect(page.locator("#notice")).to_have_text("cancel requested")
    expect(page.locator("#notice")).to_have_class("notice notice-ok")
    expect(page.locator("#job-error")).to_have_class("notice notice-info")


def test_cancel_is_not_offered_once_the_provider_runs_the_task_and_a_refusal_shows_in_red(
    page: Page, console: RunningConsole, sb: UserSandbox
) -> None:
    # Given a job whose provider task is RUNNING (with push on, the job itself may still say SUBMITTED)
    emulator = sb.emulator
    saved = emulator.config.running_seconds
    emulator.config.running_seconds = 30.0
    try:
        prompt = f"console marathon {uuid.uuid4().hex[:6]}"
        job_id = submit_from_form(page, console, prompt, "640*360", "5")
        wait_until_provider_says(sb, prompt, "RUNNING")
    finally:
        emulator.config.running_seconds = saved
    page.goto(f"{console.url}/jobs/{job_id}")
    # Then Cancel is not offered, or, offered on a status that cannot tell, its refusal is an error
    # (red) and the button does not come back
    if page.locator("#cancel").count():
        page.click("#cancel")
        expect(page.locator("#notice")).to_have_class("notice notice-error")
        expect(page.locator("#notice")).to_contain_text("409")
        page.reload()
    expect(page.locator("#cancel")).to_have_count(0)


def wait_until_provider_says(sb: UserSandbox, prompt: str, status: str) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        tasks = [t for t in sb.emulator.tasks() if prompt in str(t["prompt"])]
        if tasks and str(tasks[0]["status"]) == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"the provider never said {status} for {prompt!r}")


def test_the_form_enforces_the_duration_rule_and_shows_the_servers_field_errors(
    page: Page, console: RunningConsole
) -> None:
    page.goto(f"{console.url}/new")
    assert page.locator("#size option").count() == 20
    # Given a 1080P size, the form offers 5 and 8 s only
    page.select_option("#size", "1920*1080")
    assert page.locator("#duration option[value='10']").is_disabled()
    # When a request breaks the rule anyway (the page's limits bypassed, as a stale page could)
    page.fill("#prompt", "a refused request")
    page.evaluate(
        "() => { const d = document.getElementById('duration'); d.options[2].disabled = false; d.value = '10'; }"
    )
    page.click("#submit")
    # Then the server's field error appears beside the field, and the form keeps what was typed
    expect(page.locator("#error-duration")).to_contain_text("not allowed for 1080P")
    expect(page.locator("#form-error")).to_contain_text("HTTP 400")
    assert page.input_value("#prompt") == "a refused request"
    assert page.input_value("#size") == "1920*1080"


def upload_prompt_file(page: Page, console: RunningConsole, name: str, lines: list[dict[str, Any]]) -> None:
    """Upload one .jsonl from the console's form, as a person would."""
    page.goto(f"{console.url}/new")
    body = "\n".join(json.dumps(x) for x in lines).encode()
    page.set_input_files("#files", files=[{"name": name, "mimeType": "application/x-ndjson", "buffer": body}])
    page.click("#upload-submit")


def test_uploaded_prompt_files_show_up_in_the_gallery_with_their_origin(
    page: Page, console: RunningConsole, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    name = f"console-{tag}.jsonl"
    lines = [
        {"prompt": f"upload {tag} one", "size": "640*360"},
        {"prompt": f"upload {tag} two", "size": "360*640"},
    ]
    upload_prompt_file(page, console, name, lines)
    expect(page.locator("#notice")).to_contain_text(f"prompts/{name}")
    # The gallery refreshes by itself until both lines' jobs are there, each naming its file and line
    cards = page.locator(f"#gallery article:has-text('upload {tag}')")
    expect(cards).to_have_count(2)
    expect(page.locator(f"#gallery article:has-text('upload {tag} two') .origin")).to_have_text(
        f"file prompts/{name}:2"
    )
    # The words filter narrows the gallery in place
    page.fill("#filter-text", f"{tag} two")
    expect(page.locator("#gallery article:visible")).to_have_count(1)
    page.fill("#filter-text", "")
    expect(page.locator(f"#gallery article:has-text('upload {tag}') .badge")).to_have_text(["SUCCEEDED"] * 2)
    # Finished jobs show their video in place: a decoded frame (not only the metadata), not black
    page.wait_for_function(
        "() => { const v = [...document.querySelectorAll('#gallery video')];"
        " return v.length >= 3 && v.every(x => x.readyState >= 2 && x.videoWidth > 0 && x.currentTime > 0); }"
    )
    for thumb in page.locator(f"#gallery article:has-text('upload {tag}') video").all():
        assert brightest(thumb.screenshot()) > 40, "a finished card's thumbnail is black"
    screenshot(page, "console-gallery.png", tmp_path)


def brightest(png: bytes) -> int:
    """The highest channel value in a PNG screenshot (0: all black)."""
    import av

    with av.open(io.BytesIO(png), format="png_pipe") as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    return max(bytes(frame.planes[0]))


def test_the_console_refuses_other_hosts_and_forms_without_its_token(console: RunningConsole) -> None:
    import httpx

    assert httpx.get(f"{console.url}/", headers={"Host": "evil.example:80"}).status_code == 421
    refused = httpx.post(f"{console.url}/new", data={"prompt": "x", "size": "640*360", "duration": "5"})
    assert refused.status_code == 403
    page = httpx.get(f"{console.url}/")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_apis_location_is_followable_and_the_view_shows_origin_and_progress(sb: UserSandbox) -> None:
    from t2v_client import ApiClient

    place = sandbox_place(sb.work_dir / "endpoints.json")
    with ApiClient(place.target) as api:
        accepted = api.call(
            "POST", "/videos", json_body={"prompt": f"follow {uuid.uuid4().hex[:6]}", "size": "640*360"}
        )
        assert accepted.status == 202
        location = accepted.headers["location"]
        assert location == accepted.body["links"]["self"]
        assert location.startswith("/v1/videos/")  # with the stage: following it works
        # Follow it as a client would: the host of the API, the path it was given
        host = place.target.api_url.removesuffix("/v1")
        job = httpx_get_signed(api, host + location)
        assert job["job_id"] == accepted.body["job_id"]
        assert job["origin"]["door"] == "api"
        assert job["origin"]["caller"]
        assert job["progress"]["phase"] in {"queued", "running", "downloading", "done"}
        # Strict integers: a string duration is refused naming the field
        refused = api.call("POST", "/videos", json_body={"prompt": "p", "duration": "5"})
        assert refused.status == 400
        assert refused.body["error"]["fields"][0]["field"] == "duration"


def httpx_get_signed(api: Any, url: str) -> dict[str, Any]:
    import httpx

    headers = api.signed_headers("GET", url, b"", {"Accept": "application/json"})
    answer = httpx.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_endpoints_file_outputs_are_reachable_and_events_follows_sns_and_eventbridge(sb: UserSandbox) -> None:
    from t2v_client import ApiClient
    from t2v_sandbox.events import Tap

    endpoints = json.loads((sb.work_dir / "endpoints.json").read_text())
    # The template's ApiUrl output, made local: following it works
    assert endpoints["outputs"]["ApiUrl"] == endpoints["api_url"]
    assert ".execute-api." in endpoints["outputs_as_declared"]["ApiUrl"]

    place = sandbox_place(sb.work_dir / "endpoints.json")
    tap = Tap(place)
    try:
        with ApiClient(place.target) as api:
            job_id = api.submit({"prompt": f"events {uuid.uuid4().hex[:6]}", "size": "640*360"})["job_id"]
        seen: dict[str, str] = {}
        deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
        while len(seen) < 2 and time.monotonic() < deadline:
            for item in tap.receive():
                if job_id in item.line():
                    seen[item.kind] = item.line()
        assert "status=SUCCEEDED" in seen.get("sns", ""), seen
        assert "Video Generation Succeeded" in seen.get("event", ""), seen
    finally:
        tap.close()
    # It leaves nothing behind
    assert not [q for q in place.client("sqs").list_queues().get("QueueUrls", []) if "t2v-events-" in q]
    rules = place.client("events").list_rules(EventBusName=place.event_bus)["Rules"]
    assert not [r for r in rules if r["Name"].startswith("t2v-events-")]


# --- issue 22: a console that survives real use


NOTIFICATION_SPY = """
window.__notes = [];
if ("Notification" in window) {
  const Real = window.Notification;
  class Spy {
    constructor(title, options) { window.__notes.push({ title, body: options && options.body }); }
    static get permission() { return Real.permission; }
    static requestPermission() { return Real.requestPermission(); }
  }
  window.Notification = Spy;
}
"""


def test_ctrl_enter_notify_copy_cost_download_and_rerun(
    browser: BrowserContext, page: Page, console: RunningConsole, tmp_path: Path
) -> None:
    browser.grant_permissions(["notifications", "clipboard-read", "clipboard-write"], origin=console.url)
    page.add_init_script(NOTIFICATION_SPY)
    try:
        # Given the form, Ctrl+Enter in the prompt sends it
        prompt = f"console heron {uuid.uuid4().hex[:6]}"
        page.goto(f"{console.url}/new")
        page.fill("#prompt", prompt)
        page.select_option("#size", "640*360")
        page.press("#prompt", "Control+Enter")
        page.wait_for_url("**/jobs/*")
        job_id = page.url.rsplit("/", 1)[-1]

        # When the user asks to be told, then the browser notifies once the job ends
        page.click("#notify")
        expect(page.locator("#notify")).to_have_text("You will be notified")
        expect(page.locator("#status")).to_have_text("SUCCEEDED")
        page.wait_for_function("() => window.__notes.length === 1")
        assert page.evaluate("() => window.__notes[0]") == {"title": "t2v: SUCCEEDED", "body": prompt}

        # Copy puts the job id and the prompt on the clipboard
        page.click("#copy-id")
        expect(page.locator("#copied")).to_contain_text("copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == job_id
        page.click("#copy-prompt")
        page.wait_for_function("t => navigator.clipboard.readText().then(x => x === t)", arg=prompt)

        # The cost in seconds and the budget left; booleans as JSON writes them
        expect(page.locator("#cost-seconds")).to_contain_text("5 s")
        expect(page.locator("#budget-left")).to_be_visible()
        expect(page.locator("#request tr:has(th:text-is('audio')) td")).to_have_text("false")

        # The download button saves the MP4 (an attachment from the console, not a cross-origin link)
        with page.expect_download() as info:
            page.click("#download")
        download = info.value
        assert download.suggested_filename == f"{job_id}.mp4"
        saved = tmp_path / "saved.mp4"
        download.save_as(saved)
        assert saved.read_bytes()[4:8] == b"ftyp"
        assert str(saved.stat().st_size) in page.inner_text("#player")

        # Re-run opens the form with the same settings, and sends a new job
        page.click("#rerun")
        assert page.input_value("#prompt") == prompt
        assert page.input_value("#size") == "640*360"
        assert page.input_value("#duration") == "5"
        page.click("#submit")
        page.wait_for_url("**/jobs/*")
        assert page.url.rsplit("/", 1)[-1] != job_id
        expect(page.locator("#prompt-title")).to_have_text(prompt)
    finally:
        browser.clear_permissions()


def test_a_390_px_wide_dark_console_fits_and_unknown_jobs_get_a_styled_404(
    browser: BrowserContext, console: RunningConsole, tmp_path: Path
) -> None:
    phone = browser.new_page()
    try:
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.emulate_media(color_scheme="dark")
        for path in ("/", "/new", "/jobs/no-such-job"):
            answer = phone.goto(f"{console.url}{path}")
            assert answer is not None
            # No horizontal scroll at 390 px, and the page is dark
            width = phone.evaluate("() => document.scrollingElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide"
            background = phone.evaluate("() => getComputedStyle(document.body).backgroundColor")
            assert sum(int(x) for x in background[4:-1].split(",")[:3]) < 3 * 60, background
        # The last one: an unknown job, as a page of the console with the API's word
        assert answer.status == 404
        expect(phone.locator("h1")).to_have_text("Not found")
        expect(phone.locator("#unreachable")).to_contain_text("no job no-such-job")
        phone.goto(f"{console.url}/")
        box = phone.locator("#filter-text").bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390  # the search box is not cut
        screenshot(phone, "console-mobile-dark.png", tmp_path)
        # A job's page fits too, with its buttons
        phone.locator("#gallery article a.prompt").first.click()
        phone.wait_for_url("**/jobs/*")
        expect(phone.locator("#rerun")).to_be_visible()
        assert phone.evaluate("() => document.scrollingElement.scrollWidth") <= 390
    finally:
        phone.close()
    import httpx

    icon = httpx.get(f"{console.url}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_the_gallery_pages_sorts_filters_by_date_and_searches_on_the_server(
    page: Page, console: RunningConsole, sb: UserSandbox
) -> None:
    tag = uuid.uuid4().hex[:6]
    place = sandbox_place(sb.work_dir / "endpoints.json")
    with ApiClient(place.target) as api:
        ids = [api.submit({"prompt": f"paging {tag} {n}", "size": "640*360"})["job_id"] for n in range(3)]
    # Pages of two: "Load more" appends the next page until there is none, each job once
    page.goto(f"{console.url}/?limit=2")
    expect(page.locator("#gallery article")).to_have_count(2)
    for _ in range(20):
        if page.locator("#load-more").is_hidden():
            break
        page.click("#load-more")
        page.wait_for_function("() => !document.getElementById('load-more').disabled")
    expect(page.locator("#load-more")).to_be_hidden()  # the last page came
    shown = page.eval_on_selector_all("[data-job]", "nodes => nodes.map(n => n.dataset.job)")
    assert len(shown) == len(set(shown))
    assert set(ids) <= set(shown)
    # Search goes to the server (the words in the URL) and shows only those jobs
    page.fill("#filter-text", f"paging {tag}")
    page.press("#filter-text", "Enter")
    page.wait_for_url(f"**q=paging+{tag}**")
    expect(page.locator("#gallery article:visible")).to_have_count(3)
    # Sort and date: the controls keep their values; a range with no jobs shows none
    page.select_option("#filter-order", "oldest")
    page.wait_for_url("**order=oldest**")
    expect(page.locator("#filter-order")).to_have_value("oldest")
    page.goto(f"{console.url}/?since=2099-01-01")
    expect(page.locator(".empty")).to_have_text("No videos match these filters.")
    expect(page.locator("#filter-since")).to_have_value("2099-01-01")


def test_a_refused_prompt_file_line_shows_in_the_gallery(page: Page, console: RunningConsole) -> None:
    # Given a prompt file whose second line breaks the rules (needs the refused lines to be owned)
    tag = uuid.uuid4().hex[:6]
    name = f"refused-{tag}.jsonl"
    lines = [
        {"prompt": f"refused {tag} good", "size": "640*360"},
        {"prompt": f"refused {tag} bad", "size": "7*7"},
    ]
    upload_prompt_file(page, console, name, lines)
    # Then the gallery shows it FAILED, naming its file and line
    refused = page.locator(f"#gallery article:has(.origin:text-is('file prompts/{name}:2'))")
    expect(refused).to_have_count(1)
    expect(refused.locator(".badge")).to_have_text("FAILED")


def test_the_console_says_reconnecting_fails_fast_keeps_the_form_and_follows_the_sandbox(
    browser: BrowserContext, sb: UserSandbox, tmp_path: Path
) -> None:
    # Given a console reading its own copy of the endpoints file, whose API first hangs
    real = sb.work_dir / "endpoints.json"
    endpoints = tmp_path / "endpoints.json"
    shutil.copy(real, endpoints)
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # connections are taken by the kernel, and never answered
    moved = json.loads(real.read_text())
    moved["api_url"] = f"http://127.0.0.1:{hung.getsockname()[1]}/v1"
    running = serve(sandbox_place(real), endpoints_file=endpoints)
    tab = browser.new_page()
    try:
        endpoints.write_text(json.dumps(moved))
        # When the page is loaded, it fails within seconds and says it is reconnecting
        started = time.monotonic()
        answer = tab.goto(f"{running.url}/")
        assert answer is not None and answer.status == 503
        assert time.monotonic() - started < 12, "a reload under a hung API took too long"
        expect(tab.locator("#reconnecting h1")).to_have_text("Reconnecting to the API…")

        # Then the sandbox "comes back" at another address: the page reloads itself with the gallery
        shutil.copy(real, endpoints)
        expect(tab.locator("#gallery")).to_be_visible()
        expect(tab.locator("#connection")).to_be_hidden()

        # When the API goes away under an open page, the page says so and dims what it shows
        gone = socket.socket()
        gone.bind(("127.0.0.1", 0))
        moved["api_url"] = f"http://127.0.0.1:{gone.getsockname()[1]}/v1"  # bound, not listening: refused
        endpoints.write_text(json.dumps(moved))
        expect(tab.locator("#connection")).to_contain_text("Reconnecting to the API")
        expect(tab.locator("#gallery")).to_have_class("cards stale")
        screenshot(tab, "console-reconnecting.png", tmp_path)

        # And a video requested meanwhile keeps what was typed
        tab.goto(f"{running.url}/new")
        tab.fill("#prompt", "typed while the API is down")
        tab.select_option("#size", "640*480")
        tab.fill("#seed", "42")
        tab.click("#submit")
        expect(tab.locator("#form-error")).to_contain_text("cannot reach the API")
        assert tab.input_value("#prompt") == "typed while the API is down"
        assert tab.input_value("#size") == "640*480"
        assert tab.input_value("#seed") == "42"

        # Once it is back, the same form goes through
        shutil.copy(real, endpoints)
        tab.click("#submit")
        tab.wait_for_url("**/jobs/*")
        expect(tab.locator("#prompt-title")).to_have_text("typed while the API is down")
        gone.close()
    finally:
        tab.close()
        running.stop()
        hung.close()


# --- model families (issue 23): the form from GET /v1/models, images in, thumbnails out
IT2V = "pixverse/pixverse-v5.6-it2v"
KF2V = "pixverse/pixverse-v5.6-kf2v"


def test_the_form_switches_fields_with_the_model_and_checks_images_in_the_page(
    page: Page, console: RunningConsole
) -> None:
    # Given the form: its models are the API's (GET /v1/models), text to video first
    page.goto(f"{console.url}/new")
    models = page.locator("#model option").evaluate_all("(options) => options.map((o) => o.value)")
    assert models[0] == "pixverse/pixverse-v5.6-t2v" and {IT2V, KF2V} <= set(models), models
    expect(page.locator("#size option")).to_have_count(20)
    expect(page.locator("#image")).to_have_count(0)

    # When kf2v is picked: a resolution instead of a size, and two image inputs
    page.select_option("#model", KF2V)
    expect(page.locator("#size")).to_have_count(0)
    expect(page.locator("#resolution option")).to_have_count(4)
    expect(page.locator("#image")).to_be_visible()
    expect(page.locator("#last-frame")).to_be_visible()
    # 1080P offers 5 and 8 s only, as for sizes
    page.select_option("#resolution", "1080P")
    assert page.locator("#duration option[value='10']").is_disabled()

    # A text file named .png is refused in the page, naming it, before anything is sent
    page.set_input_files(
        "#last-frame", files=[{"name": "photo.png", "mimeType": "image/png", "buffer": b"not a picture"}]
    )
    expect(page.locator("#error-last-frame")).to_contain_text("photo.png: not an image its bytes show")
    assert page.input_value("#last-frame") == ""
    # A dropped image is taken and previewed
    red = list(solid_png(64, 48, (220, 30, 30)))
    page.evaluate(
        """(bytes) => {
          const dt = new DataTransfer();
          dt.items.add(new File([new Uint8Array(bytes)], "red.png", { type: "image/png" }));
          const zone = document.getElementById("image").closest("[data-drop]");
          zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""",
        red,
    )
    page.wait_for_function(
        "() => { const p = document.getElementById('preview-image'); return !p.hidden && p.naturalWidth === 64; }"
    )
    assert page.evaluate("() => document.getElementById('image').files[0].name") == "red.png"

    # Sent without its last frame, the console says which image is missing and keeps the first
    page.fill("#prompt", "from red to nothing")
    page.click("#submit")
    expect(page.locator("#error-last-frame")).to_contain_text(f"{KF2V} needs this image")
    expect(page.locator("#kept-image")).to_contain_text("s3://")
    assert page.input_value("#model") == KF2V
    page.wait_for_load_state()  # the new page's script listens before the picker is used

    # And it2v has one image input; back to text to video, the size returns
    page.select_option("#model", IT2V)
    expect(page.locator("#image")).to_be_visible()
    expect(page.locator("#last-frame")).to_have_count(0)
    page.select_option("#model", "pixverse/pixverse-v5.6-t2v")
    expect(page.locator("#size option")).to_have_count(20)
    expect(page.locator("#image")).to_have_count(0)


def test_t2v_models_lists_the_families_and_submit_uploads_a_local_image_to_the_callers_folder(
    sb: UserSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from t2v_client.images import image_prefix
    from t2v_sandbox import cli

    endpoints = str(sb.work_dir / "endpoints.json")
    # `t2v models`: the API's families and their fields (GET /v1/models, as the sandbox serves it)
    args = cli.build_parser().parse_args(["models", "--endpoints", endpoints])
    assert args.func(args) == 0
    listed = capsys.readouterr().out
    assert f"{IT2V}  family it2v" in listed and f"{KF2V}  family kf2v" in listed
    assert "resolution  string; optional; one of 360P, 540P, 720P, 1080P" in listed

    # `t2v submit --model pixverse-v5.6-it2v --image FILE`: the file lands in the caller's folder, the job is accepted
    image = tmp_path / "red square.png"
    image.write_bytes(solid_png(96, 64, (220, 30, 30)))
    argv = [
        "submit",
        "--model",
        "pixverse-v5.6-it2v",
        "--image",
        str(image),
        "--resolution",
        "360P",
        "--endpoints",
        endpoints,
    ]
    args = cli.build_parser().parse_args(argv)
    assert args.func(args) == 0, capsys.readouterr().err
    job_id = capsys.readouterr().out.strip()
    place = sandbox_place(sb.work_dir / "endpoints.json")
    with ApiClient(place.target) as api:
        (media,) = api.get(job_id)["request"]["media"]
    assert media["type"] == "image_url"
    bucket, _, key = media["url"].removeprefix("s3://").partition("/")
    assert bucket == place.bucket and key.startswith(image_prefix(place)) and key.endswith("-red-square.png")
    stored = place.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == image.read_bytes()

    # kf2v with two local frames, followed to its end: both uploaded, the video made
    last = tmp_path / "blue.png"
    last.write_bytes(solid_png(96, 64, (30, 30, 220)))
    argv = ["submit", "red to blue", "--model", KF2V, "--image", str(image), "--last-frame", str(last)]
    args = cli.build_parser().parse_args([*argv, "--resolution", "360P", "--wait", "--endpoints", endpoints])
    assert args.func(args) == 0, capsys.readouterr().err
    assert " SUCCEEDED size=360P " in capsys.readouterr().err


def test_an_it2v_request_with_an_uploaded_image_succeeds_and_its_page_shows_the_thumbnail(
    page: Page, console: RunningConsole, tmp_path: Path
) -> None:
    # Given an it2v request from the form with a chosen image
    page.goto(f"{console.url}/new")
    page.select_option("#model", IT2V)
    page.fill("#prompt", f"the red square wakes {uuid.uuid4().hex[:6]}")
    page.select_option("#resolution", "360P")
    page.set_input_files(
        "#image",
        files=[{"name": "red.png", "mimeType": "image/png", "buffer": solid_png(96, 64, (220, 30, 30))}],
    )
    page.click("#submit")
    page.wait_for_url("**/jobs/*")

    # Then the job succeeds, and its page shows the image it started from, through the console
    expect(page.locator("#status")).to_have_text("SUCCEEDED")
    thumb = page.locator("#image-0")
    expect(thumb).to_be_visible()
    page.wait_for_function("() => document.getElementById('image-0').naturalWidth === 96")
    assert str(thumb.get_attribute("src")).startswith("/jobs/")
    expect(page.locator("#images figcaption")).to_have_text("image_url")
    screenshot(page, "console-job-it2v.png", tmp_path)


def test_a_batch_from_the_batches_page_shows_its_progress_jobs_and_results(
    page: Page, console: RunningConsole, tmp_path: Path
) -> None:
    # Given a .jsonl of 6 lines, one refused, run as a batch from the Batches page
    tag = uuid.uuid4().hex[:6]
    lines = [json.dumps({"prompt": f"console batch {tag} {n}", "size": "640*360"}) for n in range(6)]
    lines[2] = json.dumps({"prompt": f"console batch {tag} bad", "size": "7*7"})
    page.goto(f"{console.url}/batches")
    page.set_input_files(
        "#batch-file",
        files=[
            {
                "name": f"b-{tag}.jsonl",
                "mimeType": "application/x-ndjson",
                "buffer": "\n".join(lines).encode(),
            }
        ],
    )
    page.click("#batch-submit")
    # Then its page follows it to the end: status, a full progress bar, the counts, its jobs' cards
    page.wait_for_url("**/batches/batch-*")
    expect(page.locator("#status")).to_have_text("COMPLETED", timeout=90_000)
    expect(page.locator("#count-succeeded")).to_have_text("5")
    expect(page.locator("#count-failed")).to_have_text("1")
    assert page.locator("#progress").evaluate("p => p.value / p.max") == 1
    expect(page.locator("#cancel")).to_have_count(0)
    expect(page.locator(f"#gallery article:has(.origin:has-text('b-{tag}.jsonl'))")).to_have_count(6)
    # And its results download through the console: one line per input line
    with page.expect_download() as download:
        page.click("#results")
    saved = tmp_path / "results.jsonl"
    download.value.save_as(saved)
    results = [json.loads(x) for x in saved.read_text().splitlines()]
    assert [(r["line"], r["status"]) for r in results] == [
        (n, "FAILED" if n == 3 else "SUCCEEDED") for n in range(1, 7)
    ]
    # And the Batches page lists it with its bar
    page.goto(f"{console.url}/batches")
    expect(page.locator(f"#batches :text('b-{tag}.jsonl')")).to_have_count(1)
    screenshot(page, "console-batches.png", tmp_path)
