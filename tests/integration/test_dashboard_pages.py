"""Dashboard pages through the real app: who sees what, <5 suppression, CSRF, actions, audit."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from tracker.db.tables import Alert, AuditEvent, Patient
from tracker.domain import AlertState, ContactState

from ..conftest import make_settings
from ..web_support import (
    add_account,
    cheap_argon2,  # noqa: F401 - autouse fixture
    csrf_from,
    seed_service,
    sign_in,
    web_client,
)

IDENTIFIABLE_PAGES = ("/alerts", "/patients", "/import", "/surveys/preview")


@pytest.fixture
def settings(sqlite_url: str):  # type: ignore[no-untyped-def]
    # Page logic is engine-independent; the SQL runs on PostgreSQL in test_api and the bench.
    return make_settings(sqlite_url)


@pytest.fixture
def service(app):  # type: ignore[no-untyped-def]
    seeded = seed_service(app, north=3, south=7)
    add_account(app, "admin@example.org", "admin")
    add_account(app, "north@example.org", "staff", "North")
    add_account(app, "research@example.org", "researcher")
    return seeded


def _client_for(app, email):  # type: ignore[no-untyped-def]
    client = web_client(app)
    assert sign_in(client, email).status_code == 303
    return client


def test_researcher_sees_suppressed_aggregates_only(app, service) -> None:
    client = _client_for(app, "research@example.org")
    page = client.get("/")
    assert page.status_code == 200
    assert "&lt;5" in page.text  # e.g. the 1-4 alerts and texts due are suppressed
    for ref in service.north_refs + service.south_refs:
        assert ref not in page.text
    assert "Alerts waiting" not in page.text
    for path in (*IDENTIFIABLE_PAGES, f"/patients/{service.north_refs[0]}", "/audit"):
        assert client.get(path).status_code == 403, path
    assert client.get("/exports").status_code == 200


def test_small_counts_are_exact_for_staff_and_suppressed_for_researchers(app) -> None:
    seed_service(app, north=3, south=0 + 1)
    add_account(app, "admin@example.org", "admin")
    add_account(app, "research@example.org", "researcher")
    admin = _client_for(app, "admin@example.org").get("/").text
    research = _client_for(app, "research@example.org").get("/").text
    # 4 episodes in all, all anchored: exact for the admin, "<5" for the researcher.
    assert "<td>4</td>" in admin and "<td>4</td>" not in research
    assert research.count("&lt;5") >= 2


def test_staff_see_only_their_site(app, service) -> None:
    client = _client_for(app, "north@example.org")
    alerts = client.get("/alerts").text
    assert f"#{service.risk_alert_id}" in alerts and f"#{service.south_alert_id}" not in alerts
    assert client.get(f"/patients/{service.north_refs[0]}").status_code == 200
    assert client.get(f"/patients/{service.south_refs[0]}").status_code == 403
    assert client.get("/exports").status_code == 403 and client.get("/audit").status_code == 403
    overview = client.get("/").text
    assert "for North" in overview


def test_timeline_masks_the_phone_and_is_audited(app, service) -> None:
    client = _client_for(app, "north@example.org")
    ref = service.north_refs[0]
    page = client.get(f"/patients/{ref}").text
    with app.sessions() as session:
        patient = session.scalars(select(Patient).where(Patient.patient_ref == ref)).one()
        phone = app.crypto.decrypt_phone(patient.phone_ciphertext)
    assert phone not in page and phone[-9:] not in page and "*" * 8 + phone[-3:] in page
    assert "I feel hopeless 3" in page and "delivered" in page
    with app.sessions() as session:
        views = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.view")).all()
    assert [(v.actor, v.entity_ref) for v in views] == [("north@example.org", ref)]


def test_forms_without_csrf_are_refused(app, service) -> None:
    client = _client_for(app, "north@example.org")
    ref = service.north_refs[0]
    refused = [
        client.post(f"/alerts/{service.risk_alert_id}/resolve", data={"note": "done"}),
        client.post(f"/patients/{ref}/contact", data={"action": "pause", "csrf_token": "x"}),
        client.post(f"/patients/{ref}/erase", data={"confirm": ref}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    with app.sessions() as session:
        assert session.get(Alert, service.risk_alert_id).state == AlertState.OPEN
        patient = session.scalars(select(Patient).where(Patient.patient_ref == ref)).one()
        assert patient.contact_state == ContactState.ACTIVE and patient.erased_at is None


def test_acknowledge_and_resolve_an_alert_with_a_note(app, service) -> None:
    client = _client_for(app, "north@example.org")
    token = csrf_from(client, "/alerts")
    page = client.get("/alerts").text
    assert "overdue" in page and "4 h" in page  # 6 hours old against a 4 hour target
    alert_id = service.risk_alert_id
    ack = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": token})
    assert ack.status_code == 303
    missing = client.post(f"/alerts/{alert_id}/resolve", data={"csrf_token": token, "note": " "})
    assert missing.status_code == 422 and "say what was done" in missing.text
    done = client.post(
        f"/alerts/{alert_id}/resolve", data={"csrf_token": token, "note": "Phoned; safe."}
    )
    assert done.status_code == 303
    with app.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert.state == AlertState.RESOLVED and alert.resolved_by == "north@example.org"
        assert alert.acknowledged_by == "north@example.org" and "Phoned" in alert.resolution_note
    assert f"#{alert_id}" in client.get("/alerts?show=resolved").text


def test_pause_resume_withdraw_and_erase_from_the_timeline(app, service) -> None:
    client = _client_for(app, "north@example.org")
    ref = service.north_refs[1]
    token = csrf_from(client, f"/patients/{ref}")
    for action, state in (
        ("pause", ContactState.PAUSED),
        ("resume", ContactState.ACTIVE),
        ("withdraw", ContactState.WITHDRAWN),
    ):
        response = client.post(
            f"/patients/{ref}/contact", data={"csrf_token": token, "action": action}
        )
        assert response.status_code == 303, response.text
        with app.sessions() as session:
            patient = session.scalars(select(Patient).where(Patient.patient_ref == ref)).one()
            assert patient.contact_state == state
    wrong = client.post(f"/patients/{ref}/erase", data={"csrf_token": token, "confirm": "nope"})
    assert wrong.status_code == 422
    erased = client.post(f"/patients/{ref}/erase", data={"csrf_token": token, "confirm": ref})
    assert erased.status_code == 200 and "erased-" in erased.text
    with app.sessions() as session:
        assert session.scalars(select(Patient).where(Patient.patient_ref == ref)).first() is None


def test_import_page_shows_row_errors_and_imports_nothing(app, service) -> None:
    client = _client_for(app, "north@example.org")
    token = csrf_from(client, "/import")
    header = (
        "episode_ref,patient_ref,phone,birth_year,gender,imd_quintile,site,referral_date,"
        "discharge_date,sessions,connected_external,pattern,consent_sms\n"
    )
    good = "W-1,WP-1,07400 100801,1970,female,2,North,2026-01-05,2026-05-01,4,yes,,yes\n"
    bad = "W-2,WP-2,07400 100802,1970,male,9,North,2026-01-05,2026-02-30,4,yes,,yes\n"
    upload = client.post(
        "/import",
        data={"csrf_token": token},
        files={"file": ("episodes.csv", header + good + bad, "text/csv")},
    )
    assert upload.status_code == 422 and "Nothing was imported" in upload.text
    assert "imd_quintile" in upload.text and "discharge_date" in upload.text
    assert 'id="row-errors"' in upload.text
    with app.sessions() as session:
        assert session.scalars(select(Patient).where(Patient.patient_ref == "WP-1")).first() is None
    skipped = client.post(
        "/import",
        data={"csrf_token": token, "skip_invalid": "1"},
        files={"file": ("episodes.csv", header + good + bad, "text/csv")},
    )
    assert skipped.status_code == 200 and "1 invalid row(s) skipped" in skipped.text
    other_site = client.post(
        "/import",
        data={"csrf_token": token},
        files={"file": ("e.csv", header + good.replace("North", "South"), "text/csv")},
    )
    assert other_site.status_code == 422 and "only import episodes for your site" in other_site.text


def test_survey_preview_walks_the_conversation_without_touching_patients(app, service) -> None:
    client = _client_for(app, "north@example.org")
    page = client.get("/surveys/preview")
    assert page.status_code == 200 and "1/" in page.text
    with app.sessions() as session:
        before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    token = csrf_from(client, "/surveys/preview")
    state = _state_from(page.text)
    for reply in ("7", "seven", "11", "8"):
        page = client.post(
            "/surveys/preview", data={"csrf_token": token, "state": state, "reply": reply}
        )
        assert page.status_code == 200
        state = _state_from(page.text)
    assert "recorded" in page.text and "3/" in page.text
    crisis = client.post(
        "/surveys/preview",
        data={"csrf_token": token, "state": state, "reply": "I want to end my life"},
    )
    assert "116 123" in crisis.text and "risk alert would be raised" in crisis.text
    with app.sessions() as session:
        assert session.scalars(select(Alert).where(Alert.detail.contains("preview"))).all() == []
        after = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    assert before == after  # nothing stored for a preview


def _state_from(html: str) -> str:
    import html as html_lib
    import re

    match = re.search(r'name="state" value="([^"]*)"', html)
    assert match
    return html_lib.unescape(match.group(1))


def test_admin_audit_browser_and_csv(app, service) -> None:
    client = _client_for(app, "admin@example.org")
    client.get(f"/patients/{service.south_refs[0]}")
    page = client.get("/audit?action=patient.view")
    assert page.status_code == 200 and service.south_refs[0] in page.text
    download = client.get("/audit.csv")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {"login", "patient.view"} <= {r["action"] for r in rows}
    assert all(set(r) == {"at", "actor", "action", "entity", "entity_ref", "detail"} for r in rows)


def test_overview_cache_serves_stale_figures_while_recounting(app) -> None:
    import time

    from tracker.web.dashboard import OverviewCache

    from ..factories import make_episode

    make_episode(app, site="North")
    cache = OverviewCache(app, ttl_seconds=0)
    first = cache.get(None)
    assert first.episodes == 1
    make_episode(app, site="North")
    assert cache.get(None).episodes == 1  # stale copy served, recount started
    deadline = time.monotonic() + 10
    while cache.get(None).episodes != 2:
        assert time.monotonic() < deadline, "the background recount never finished"
        time.sleep(0.05)
    assert cache.get("South").episodes == 0  # per-site entries
