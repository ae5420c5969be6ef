"""The dashboard in a real browser: Playwright driving Debian's chromium against uvicorn on
loopback. Each role sees only what it may; a risk alert is resolved; a CSV with errors shows
them; a survey is walked in the preview. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.app import build
from tracker.clock import FrozenClock
from tracker.db.engine import make_engine
from tracker.db.migrate import upgrade

from ..conftest import START, make_settings
from ..web_support import PASSWORD, add_account, seed_service

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _need_chromium() -> None:
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return
    message = "Debian's chromium is missing at /usr/bin/chromium (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """uvicorn serving create_app over a seeded SQLite database on 127.0.0.1, port from the OS."""
    _need_chromium()
    import uvicorn

    from tracker.web.app import create_app

    folder = tmp_path_factory.mktemp("browser")
    settings = make_settings(
        f"sqlite:///{folder / 'tracker.db'}", cookie_secure=False, exports_dir=folder / "exports"
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    app = build(settings, clock=FrozenClock(START), engine=engine)
    seeded = seed_service(app, north=3, south=7)
    add_account(app, "admin@example.org", "admin")
    add_account(app, "north@example.org", "staff", "North")
    add_account(app, "research@example.org", "researcher")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(app), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 15 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", seeded
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page_for(browser, server):  # type: ignore[no-untyped-def]
    base, _ = server
    contexts = []

    def open_as(email: str):  # type: ignore[no-untyped-def]
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/")
        return page

    yield open_as
    for context in contexts:
        context.close()


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_each_role_sees_only_what_it_may(page_for, server) -> None:  # type: ignore[no-untyped-def]
    _, seeded = server
    research = page_for("research@example.org")
    nav = research.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Exports").is_visible()
    assert nav.get_by_role("link", name="Alerts").count() == 0
    assert "<5" in research.locator("main").inner_text()
    body = research.content()
    assert all(ref not in body for ref in seeded.north_refs + seeded.south_refs)
    _shot(research, "researcher-overview")
    research.goto(f"/patients/{seeded.north_refs[0]}")
    assert research.get_by_role("heading", name="Not allowed").is_visible()
    research.goto("/alerts")
    assert research.get_by_role("heading", name="Not allowed").is_visible()

    staff = page_for("north@example.org")
    staff.goto("/alerts")
    cards = staff.locator("article.alert-card")
    assert cards.count() == 1 and "North" in cards.first.inner_text()
    _shot(staff, "staff-alerts")
    staff.goto(f"/patients/{seeded.south_refs[0]}")
    assert staff.get_by_role("heading", name="Not allowed").is_visible()
    staff.goto(f"/patients/{seeded.north_refs[0]}")
    assert staff.get_by_role("heading", name=f"Patient {seeded.north_refs[0]}").is_visible()
    assert "*********" in staff.locator("dl.facts").first.inner_text()
    _shot(staff, "staff-timeline")
    assert (
        staff.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").count() == 0
    )

    admin = page_for("admin@example.org")
    admin.goto("/alerts")
    assert admin.locator("article.alert-card").count() == 2
    admin.goto("/audit")
    assert admin.get_by_role("cell", name="patient.view").count() >= 1
    _shot(admin, "admin-audit")


def test_keyboard_reaches_the_skip_link_first(page_for) -> None:  # type: ignore[no-untyped-def]
    page = page_for("north@example.org")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_resolve_a_risk_alert(page_for, server) -> None:  # type: ignore[no-untyped-def]
    _, seeded = server
    page = page_for("north@example.org")
    page.goto("/alerts")
    card = page.locator(f"article:has(h2#alert-{seeded.risk_alert_id}-h)")
    assert "overdue" in card.inner_text().lower()
    card.get_by_role("button", name="Acknowledge").click()
    page.wait_for_url("**/alerts?done=*")
    card = page.locator(f"article:has(h2#alert-{seeded.risk_alert_id}-h)")
    card.get_by_label("What was done").fill("Phoned the patient; safe; GP informed.")
    card.get_by_role("button", name="Resolve").click()
    page.wait_for_url("**/alerts?done=*")
    assert page.get_by_role("status").inner_text().startswith("Done: resolved")
    assert page.locator(f"h2#alert-{seeded.risk_alert_id}-h").count() == 0
    page.goto("/alerts?show=resolved")
    resolved = page.locator(f"article:has(h2#alert-{seeded.risk_alert_id}-h)").inner_text()
    assert "north@example.org" in resolved and "GP informed" in resolved
    _shot(page, "alert-resolved")


def test_upload_a_csv_with_errors(page_for, tmp_path) -> None:  # type: ignore[no-untyped-def]
    csv_file = tmp_path / "episodes.csv"
    csv_file.write_text(
        "episode_ref,patient_ref,phone,birth_year,gender,imd_quintile,site,referral_date,"
        "discharge_date,sessions,connected_external,pattern,consent_sms\n"
        "B-1,BP-1,07400 100901,1970,female,2,North,2026-01-05,2026-05-01,4,yes,,yes\n"
        "B-2,BP-2,01234 567890,1970,male,7,North,2026-01-05,2026-02-30,4,maybe,,yes\n",
        encoding="utf-8",
    )
    page = page_for("north@example.org")
    page.goto("/import")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_role("button", name="Check and import").click()
    page.wait_for_selector("#row-errors")
    table = page.locator("#row-errors").inner_text()
    for column in ("phone", "imd_quintile", "discharge_date", "connected_external"):
        assert column in table
    assert "567890" not in table  # the number is masked even in the error table
    assert "Nothing was imported" in page.get_by_role("alert").inner_text()
    _shot(page, "import-errors")


def test_walk_a_survey_in_the_preview(page_for) -> None:  # type: ignore[no-untyped-def]
    page = page_for("north@example.org")
    page.goto("/surveys/preview")
    transcript = page.locator("#transcript")
    assert "1/" in transcript.inner_text()
    for reply in ("7", "8 out of 10", "eleven", "6", "2", "often", "3", "yes", "no"):
        page.get_by_label("Reply as the patient").fill(reply)
        page.get_by_role("button", name="Send reply").click()
        page.wait_for_load_state()
    text = transcript.inner_text()
    assert "recorded life_satisfaction: parsed = 7" in text
    assert "Sorry, that number is outside the range" in text  # "eleven" asks once more
    assert "check-in complete" in text
    _shot(page, "survey-preview")
