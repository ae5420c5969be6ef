"""The JSON API: bearer tokens and scopes, CSV-equal validation (422 with field and reason),
paginated lists, alert actions, exports; and a bounded schemathesis fuzz run with no 500s."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tracker.db.tables import ApiToken, AuditEvent, Episode
from tracker.services import users

from ..web_support import (
    add_account,
    add_token,
    cheap_argon2,  # noqa: F401 - autouse fixture
    seed_service,
    web_client,
)


def _episode(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "episode_ref": "API-EP-1",
        "patient_ref": "API-PT-1",
        "phone": "07400 100999",
        "birth_year": 1958,
        "gender": "female",
        "imd_quintile": 2,
        "site": "North",
        "referral_date": "2026-01-10",
        "discharge_date": "2026-05-20",
        "sessions": 5,
        "connected_external": "yes",
        "consent_sms": True,
    }
    row.update(overrides)
    return row


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_tokens_are_stored_hashed_and_required(app) -> None:
    secret = add_token(app, "ops", "admin")
    with app.sessions() as session:
        stored = session.scalars(select(ApiToken.token_hash)).one()
    assert secret not in stored and stored == users.hash_token(secret)
    client = web_client(app)
    assert client.get("/api/checkins").status_code == 401
    assert client.get("/api/checkins", headers=_bearer("trk_wrong")).status_code == 401
    assert client.get("/api/checkins", headers=_bearer(secret)).status_code == 200
    with app.sessions() as session:
        users.revoke_token(session, "ops", now=app.clock.now(), actor="test")
        session.commit()
    assert client.get("/api/checkins", headers=_bearer(secret)).status_code == 401


def test_create_episodes_and_validation_matches_the_csv(app) -> None:
    client = web_client(app)
    headers = _bearer(add_token(app, "north-import", "staff", "North"))
    created = client.post("/api/episodes", json={"episodes": [_episode()]}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["episodes_created"] == 1
    assert created.json()["checkins_scheduled"] + created.json()["checkins_missed"] == 2

    bad = client.post(
        "/api/episodes",
        json={
            "episodes": [
                _episode(episode_ref="API-EP-2", discharge_date="2026-02-30", phone="01234 567890"),
                _episode(episode_ref="API-EP-3", site="South"),
            ]
        },
        headers=headers,
    )
    assert bad.status_code == 422
    problems = {(p["loc"][2], p["field"]): p["msg"] for p in bad.json()["detail"]}
    assert (0, "discharge_date") in problems and "YYYY-MM-DD" in problems[(0, "discharge_date")]
    assert (0, "phone") in problems and "landline" in problems[(0, "phone")]
    assert "567890" not in bad.text  # the number itself is not echoed back
    assert (1, "site") in problems and "North" in problems[(1, "site")]
    with app.sessions() as session:  # all or nothing
        assert session.scalar(select(func.count()).select_from(Episode)) == 1

    typed = client.post("/api/episodes", json={"episodes": [{"episode_ref": 3}]}, headers=headers)
    assert typed.status_code == 422
    assert all("loc" in p and "msg" in p for p in typed.json()["detail"])
    fields = {p["field"] for p in typed.json()["detail"]}
    assert {"episode_ref", "patient_ref", "site", "sessions"} <= fields


def test_researcher_tokens_cannot_read_identifiable_lists(app) -> None:
    client = web_client(app)
    headers = _bearer(add_token(app, "research", "researcher"))
    assert client.get("/api/checkins", headers=headers).status_code == 403
    assert client.get("/api/alerts", headers=headers).status_code == 403
    assert (
        client.post("/api/episodes", json={"episodes": [_episode()]}, headers=headers).status_code
        == 403
    )


def test_checkins_are_paginated_filtered_and_site_scoped(app) -> None:
    seed_service(app, north=3, south=4)
    client = web_client(app)
    admin = _bearer(add_token(app, "admin", "admin"))
    north = _bearer(add_token(app, "north", "staff", "North"))
    seen: list[int] = []
    after = None
    while True:
        params = {"limit": 3, **({"after": after} if after else {})}
        page = client.get("/api/checkins", params=params, headers=admin).json()
        seen += [item["id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == 14 and seen == sorted(seen)
    north_items = client.get("/api/checkins", params={"limit": 500}, headers=north).json()["items"]
    assert len(north_items) == 6 and {i["site"] for i in north_items} == {"North"}
    assert (
        client.get("/api/checkins", params={"site": "South"}, headers=north).json()["items"] == []
    )
    waves = client.get("/api/checkins", params={"wave": 12}, headers=admin).json()["items"]
    assert {i["wave"] for i in waves} == {12}
    assert client.get("/api/checkins", params={"limit": 0}, headers=admin).status_code == 422
    with app.sessions() as session:
        assert (
            session.scalar(select(func.count()).where(AuditEvent.action == "api.checkins.list"))
            >= 5
        )


def test_alerts_list_and_actions(app) -> None:
    seeded = seed_service(app)
    client = web_client(app)
    north = _bearer(add_token(app, "north", "staff", "North"))
    listed = client.get("/api/alerts", headers=north).json()["items"]
    assert [a["id"] for a in listed] == [seeded.risk_alert_id]
    assert listed[0]["overdue"] is True and listed[0]["target_hours"] == 4.0
    # Another site's alert is invisible, even by id.
    other = client.post(
        f"/api/alerts/{seeded.south_alert_id}", json={"action": "acknowledge"}, headers=north
    )
    assert other.status_code == 404
    no_note = client.post(
        f"/api/alerts/{seeded.risk_alert_id}", json={"action": "resolve"}, headers=north
    )
    assert no_note.status_code == 422 and no_note.json()["detail"][0]["field"] == "note"
    ack = client.patch(
        f"/api/alerts/{seeded.risk_alert_id}", json={"action": "acknowledge"}, headers=north
    )
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "token:north"
    again = client.patch(
        f"/api/alerts/{seeded.risk_alert_id}", json={"action": "acknowledge"}, headers=north
    )
    assert again.status_code == 409
    done = client.post(
        f"/api/alerts/{seeded.risk_alert_id}",
        json={"action": "resolve", "note": "phoned; safe; GP told"},
        headers=north,
    )
    assert done.status_code == 200 and done.json()["state"] == "resolved"
    assert client.get("/api/alerts", headers=north).json()["items"] == []
    with app.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.entity == "alert", AuditEvent.entity_ref == str(seeded.risk_alert_id)
            )
        ).all()
    assert actions == ["alert.acknowledge", "alert.resolve"]


def test_exports_are_for_researchers_and_admins(app, tmp_path) -> None:
    seed_service(app)
    client = web_client(app)
    staff = _bearer(add_token(app, "north", "staff", "North"))
    assert client.post("/api/exports", json={}, headers=staff).status_code == 403
    research = _bearer(add_token(app, "research", "researcher"))
    started = client.post("/api/exports", json={"format": "csv"}, headers=research)
    if started.status_code == 503:
        pytest.skip(f"export module not available yet: {started.json()['detail']}")
    assert started.status_code == 201, started.text
    body = started.json()
    assert "outcomes.csv" in body["files"] and "codebook.json" in body["files"]
    assert client.post("/api/exports", json={"format": "xls"}, headers=research).status_code == 422


@pytest.mark.slow
def test_fuzz_openapi_finds_no_server_errors(app) -> None:
    """schemathesis against /api/openapi.json, in-process, bounded to finish in ~20 s."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    seed_service(app, north=2, south=2)
    add_account(app, "owner@example.org", "admin")
    secret = add_token(app, "fuzz", "admin")
    web = web_client(app).app
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", web)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/episodes", "/api/checkins", "/api/alerts"}
    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: object) -> None:
            response = case.call(headers=_bearer(secret))  # type: ignore[attr-defined]
            case.validate_response(response, checks=[not_a_server_error])  # type: ignore[attr-defined]

        run()
    _ = timedelta
