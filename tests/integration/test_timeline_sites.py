"""One patient, episodes at two sites: staff of one site see only their own episode's texts,
answers and alerts on the timeline (HTML) and in the JSON API; texts not tied to a check-in
(STOP, HELP, unknown replies) belong to the patient as a whole and every site with an episode
sees them; admins see everything. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tracker.app import App
from tracker.db.tables import Alert, Answer, CheckIn, Message, Patient
from tracker.domain import AlertKind, ContactState, Direction, MessageStatus
from tracker.services.alerts import raise_alert

from ..factories import make_episode
from ..web_support import (
    add_account,
    add_token,
    cheap_argon2,  # noqa: F401 - autouse fixture
    csrf_from,
    sign_in,
    web_client,
)

PATIENT = "PT-TWO-SITES"
PHONE = "07400 777001"
# Markers that only appear in one site's texts / answers (never a real phone number).
TEXTS = {
    "North": ("NORTHQ how satisfied are you", "north reply seven"),
    "South": ("SOUTHQ how satisfied are you", "south reply four"),
}
ANSWERS = {"North": "north-typed-8", "South": "south-typed-2"}
UNTIED = ("HELP untied patient text", "untied neutral reply to HELP")


@dataclass
class Shared:
    alerts: dict[str, int]  # North / South (tied to a check-in), untied (patient-level)
    untied_alert_site: str


def _shared_patient(app: App) -> Shared:
    north = make_episode(
        app, site="North", patient_ref=PATIENT, phone=PHONE, episode_ref="EP-NORTH",
        discharged_on=date(2026, 5, 20),
    )  # fmt: skip
    south = make_episode(
        app, site="South", patient_ref=PATIENT, phone=PHONE, episode_ref="EP-SOUTH",
        discharged_on=date(2026, 6, 10),
    )  # fmt: skip
    assert north.patient_id == south.patient_id, "one patient, two episodes"
    now = app.clock.now()
    alerts: dict[str, int] = {}
    with app.sessions() as session:
        patient = session.get(Patient, north.patient_id)
        assert patient is not None
        for site, episode in (("North", north), ("South", south)):
            checkin = session.get(CheckIn, episode.checkins[0].id)
            assert checkin is not None
            question, reply = TEXTS[site]
            out = Message(
                direction=Direction.OUTBOUND, patient_id=patient.id, checkin_id=checkin.id,
                purpose="question", body=question, status=MessageStatus.DELIVERED,
                status_rank=8, created_at=now,
            )  # fmt: skip
            inbound = Message(
                direction=Direction.INBOUND, patient_id=patient.id, checkin_id=checkin.id,
                purpose="reply", body=reply, status=MessageStatus.RECEIVED, status_rank=9,
                created_at=now + timedelta(minutes=1),
            )  # fmt: skip
            session.add_all([out, inbound])
            session.flush()
            session.add(
                Answer(
                    checkin_id=checkin.id, message_id=inbound.id, question_key="life_satisfaction",
                    raw_text=ANSWERS[site], value=7, outcome="parsed",
                    answered_at=now + timedelta(minutes=1),
                )
            )  # fmt: skip
            alert = raise_alert(
                session, kind=AlertKind.RISK, now=now, patient=patient, checkin=checkin,
                message_id=inbound.id, detail="risk phrase",
            )  # fmt: skip
            session.flush()
            alerts[site] = alert.id
        for body, direction, purpose in (
            (UNTIED[0], Direction.INBOUND, "reply"),
            (UNTIED[1], Direction.OUTBOUND, "help"),
        ):
            session.add(
                Message(
                    direction=direction, patient_id=patient.id, checkin_id=None, purpose=purpose,
                    body=body, status=MessageStatus.RECEIVED, status_rank=9,
                    created_at=now + timedelta(minutes=5),
                )
            )  # fmt: skip
        untied = raise_alert(
            session, kind=AlertKind.OPT_OUT_REVIEW, now=now, patient=patient, detail="stop phrase"
        )
        session.flush()
        alerts["untied"] = untied.id
        untied_site = untied.site
        session.commit()
    for site in ("North", "South"):
        with app.sessions() as session:
            assert session.get(Alert, alerts[site]).site == site  # type: ignore[union-attr]
    assert untied_site is not None
    return Shared(alerts, untied_site)


@pytest.fixture
def shared(app: App) -> Shared:
    data = _shared_patient(app)
    add_account(app, "admin@example.org", "admin")
    add_account(app, "north@example.org", "staff", "North")
    add_account(app, "south@example.org", "staff", "South")
    add_account(app, "east@example.org", "staff", "East")
    return data


def _signed_in(app: App, email: str) -> TestClient:
    client = web_client(app)
    assert sign_in(client, email).status_code == 303  # type: ignore[attr-defined]
    return client


def _bearer(app: App, name: str, role: str, site: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {add_token(app, name, role, site)}"}


def _other(site: str) -> str:
    return "South" if site == "North" else "North"


@pytest.mark.parametrize("site", ["North", "South"])
def test_staff_timeline_hides_the_other_sites_texts_answers_and_alerts(
    app: App, shared: Shared, site: str
) -> None:
    client = _signed_in(app, f"{site.lower()}@example.org")
    page = client.get(f"/patients/{PATIENT}")
    assert page.status_code == 200
    html = page.text
    other = _other(site)
    for text in TEXTS[site]:
        assert text in html
    for text in TEXTS[other]:
        assert text not in html, f"{site} staff see {other}'s text"
    assert ANSWERS[site] in html and ANSWERS[other] not in html
    # Texts not tied to a check-in belong to the patient: every site with an episode sees them.
    for text in UNTIED:
        assert text in html
    assert f"#{shared.alerts[site]}:" in html
    assert f"#{shared.alerts[other]}:" not in html
    # The patient-level alert belongs to the site it was raised for (as in the alerts queue).
    assert (f"#{shared.alerts['untied']}:" in html) == (shared.untied_alert_site == site)
    assert f"EP-{site.upper()}" in html and f"EP-{other.upper()}" not in html


def test_admin_timeline_shows_both_sites(app: App, shared: Shared) -> None:
    html = _signed_in(app, "admin@example.org").get(f"/patients/{PATIENT}").text
    for site in ("North", "South"):
        for text in TEXTS[site]:
            assert text in html
        assert ANSWERS[site] in html
        assert f"#{shared.alerts[site]}:" in html
    for text in UNTIED:
        assert text in html
    assert f"#{shared.alerts['untied']}:" in html


def test_staff_of_a_site_without_an_episode_see_nothing(app: App, shared: Shared) -> None:
    client = _signed_in(app, "east@example.org")
    page = client.get(f"/patients/{PATIENT}")
    assert page.status_code == 403
    for text in (*TEXTS["North"], *TEXTS["South"], *UNTIED):
        assert text not in page.text
    # Finding by reference reveals nothing either: no redirect to a patient they may not see.
    for ref in (PATIENT, "EP-NORTH", "EP-SOUTH"):
        found = client.get("/patients", params={"ref": ref})
        assert found.status_code == 404, ref
        assert PATIENT not in found.headers.get("location", "")


@pytest.mark.parametrize("site", ["North", "South"])
def test_find_by_the_other_sites_episode_ref_reveals_nothing(
    app: App, shared: Shared, site: str
) -> None:
    client = _signed_in(app, f"{site.lower()}@example.org")
    own = client.get("/patients", params={"ref": f"EP-{site.upper()}"})
    assert own.status_code == 303 and own.headers["location"] == f"/patients/{PATIENT}"
    assert client.get("/patients", params={"ref": PATIENT}).status_code == 303
    other = client.get("/patients", params={"ref": f"EP-{_other(site).upper()}"})
    assert other.status_code == 404


@pytest.mark.parametrize("site", ["North", "South"])
def test_api_alerts_of_a_shared_patient_are_site_scoped(
    app: App, shared: Shared, site: str
) -> None:
    client = web_client(app)
    staff = _bearer(app, site.lower(), "staff", site)
    items = client.get("/api/alerts", params={"state": "all"}, headers=staff).json()["items"]
    ids = {a["id"] for a in items}
    assert shared.alerts[site] in ids and shared.alerts[_other(site)] not in ids
    assert (shared.alerts["untied"] in ids) == (shared.untied_alert_site == site)
    assert {a["site"] for a in items} == {site}
    assert {a["episode_ref"] for a in items} == {f"EP-{site.upper()}"}
    other = client.post(
        f"/api/alerts/{shared.alerts[_other(site)]}", json={"action": "acknowledge"}, headers=staff
    )
    assert other.status_code == 404
    checkins = client.get(
        "/api/checkins", params={"episode_ref": f"EP-{_other(site).upper()}"}, headers=staff
    ).json()["items"]
    assert checkins == []
    admin = _bearer(app, "admin", "admin")
    every = client.get("/api/alerts", params={"state": "all"}, headers=admin).json()["items"]
    assert set(shared.alerts.values()) <= {a["id"] for a in every}


@pytest.mark.parametrize("site", ["North", "South"])
def test_alerts_queue_of_a_shared_patient_is_site_scoped(
    app: App, shared: Shared, site: str
) -> None:
    html = _signed_in(app, f"{site.lower()}@example.org").get("/alerts").text
    assert f"#{shared.alerts[site]}" in html and f"#{shared.alerts[_other(site)]}" not in html


def test_contact_actions_apply_to_the_whole_patient_from_either_site(
    app: App, shared: Shared
) -> None:
    """DESIGN is silent on two-site patients: pause/resume/withdraw stay patient-wide (the
    current behaviour) and any site with an episode may use them; other sites may not."""
    north = _signed_in(app, "north@example.org")
    token = csrf_from(north, f"/patients/{PATIENT}")
    paused = north.post(
        f"/patients/{PATIENT}/contact", data={"csrf_token": token, "action": "pause"}
    )
    assert paused.status_code == 303
    with app.sessions() as session:
        patient = session.scalars(select(Patient).where(Patient.patient_ref == PATIENT)).one()
        assert patient.contact_state == ContactState.PAUSED
    south = _signed_in(app, "south@example.org")
    token = csrf_from(south, f"/patients/{PATIENT}")
    resumed = south.post(
        f"/patients/{PATIENT}/contact", data={"csrf_token": token, "action": "resume"}
    )
    assert resumed.status_code == 303
    east = _signed_in(app, "east@example.org")
    token = csrf_from(east, "/patients")
    refused = [
        east.post(f"/patients/{PATIENT}/contact", data={"csrf_token": token, "action": "pause"}),
        east.post(f"/patients/{PATIENT}/erase", data={"csrf_token": token, "confirm": PATIENT}),
    ]
    assert [r.status_code for r in refused] == [403, 403]
    with app.sessions() as session:
        patient = session.scalars(select(Patient).where(Patient.patient_ref == PATIENT)).one()
        assert patient.contact_state == ContactState.ACTIVE and patient.erased_at is None
