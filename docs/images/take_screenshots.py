"""Take the README's screenshots from `make demo`'s output.

    make demo
    .venv/bin/python docs/images/take_screenshots.py [demo-output]

Serves the demo database on a free loopback port (frozen at the demo's last simulated
instant, so "overdue" and "days ago" read as they would have), signs in with a throw-away
admin account in Debian's chromium through Playwright, and saves the dashboard pages; the
report is opened straight from its file. Writes docs/images/*.png.
"""

from __future__ import annotations

import secrets
import socket
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from tracker.app import build
from tracker.clock import FrozenClock
from tracker.db.tables import Message, User
from tracker.demo import DEMO_DB, REPORT_DIR, demo_settings
from tracker.services import users

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
EMAIL = "screenshots@example.org"
PAGES = {"dashboard": "/", "alerts": "/alerts"}


def main(demo_dir: Path) -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from tracker.web.app import create_app

    settings = demo_settings(demo_dir, cookie_secure=False)
    probe = build(settings)
    with probe.sessions() as session:
        last = session.scalar(select(func.max(Message.created_at)))
    probe.close()
    app = build(settings, clock=FrozenClock(last))
    password = secrets.token_urlsafe(16)
    with app.sessions() as session:
        old = session.scalars(select(User).where(User.email == EMAIL)).first()
        if old is not None:
            session.delete(old)
            session.flush()
        users.add_user(
            session, email=EMAIL, role="admin", password=password, site=None,
            now=app.clock.now(), actor="screenshots",
        )  # fmt: skip
        session.commit()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(app), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context(
                base_url=base, viewport={"width": 1280, "height": 900}
            ).new_page()
            page.goto("/login")
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base}/")
            for name, path in PAGES.items():
                page.goto(path)
                page.screenshot(path=str(HERE / f"{name}.png"))
            report = (demo_dir / REPORT_DIR / "report.html").resolve()
            page.goto(report.as_uri())
            page.screenshot(path=str(HERE / "report.png"))
            heading = page.get_by_role("heading", name="Outcomes by pattern over time")
            heading.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.evaluate("window.scrollBy(0, -16)")
            page.screenshot(path=str(HERE / "report-trajectories.png"))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        with app.sessions() as session:
            for user in session.scalars(select(User).where(User.email == EMAIL)):
                session.delete(user)
            session.commit()
        app.close()

    print("wrote", ", ".join(sorted(p.name for p in HERE.glob("*.png"))))


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output")
    if not (folder / DEMO_DB).exists():
        sys.exit(f"{folder / DEMO_DB} not found: run `make demo` first")
    main(folder)
