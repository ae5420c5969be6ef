"""SMS webhooks over HTTP: signatures, replays, concurrent duplicates, status callbacks, limits."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.sms_setup import PATIENT_PHONE, enrol_with_open_checkin
from tracker.app import App, build
from tracker.clock import FrozenClock
from tracker.db.engine import make_engine
from tracker.db.migrate import upgrade
from tracker.db.tables import Alert, Answer, CheckIn, Message
from tracker.domain import AlertKind, CheckInState, Direction, MessageStatus
from tracker.sms.simulator import SimulatorGateway
from tracker.sms.twilio import compute_signature
from tracker.web.app import create_app

PUBLIC = "https://tracker.example.org"
TOKEN = "webhook-test-token"
TWILIO_ENV = {
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": TOKEN,
    "TWILIO_FROM_NUMBER": "+447700900000",
}


def build_app(db_url: str, clock: FrozenClock, **overrides: object) -> App:
    settings = make_settings(db_url, **overrides)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    app = build(settings, clock=clock, engine=engine)
    app._gateway = SimulatorGateway(app)  # replies never leave the machine
    return app


@pytest.fixture
def twilio_app(db_url: str, clock: FrozenClock) -> Iterator[App]:
    app = build_app(db_url, clock, sms_backend="twilio", public_url=PUBLIC, **TWILIO_ENV)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def client(twilio_app: App) -> Iterator[TestClient]:
    with TestClient(create_app(twilio_app), base_url="http://internal:8000") as web:
        yield web


@pytest.fixture
def lite_app(sqlite_url: str, clock: FrozenClock) -> Iterator[App]:
    """For checks that do not depend on the database engine (signatures, limits): SQLite only."""
    app = build_app(sqlite_url, clock, sms_backend="twilio", public_url=PUBLIC, **TWILIO_ENV)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def lite(lite_app: App) -> Iterator[TestClient]:
    with TestClient(create_app(lite_app), base_url="http://internal:8000") as web:
        yield web


def form(sid: str = "SM" + "a" * 32, body: str = "7", phone: str = PATIENT_PHONE) -> dict:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": TWILIO_ENV["TWILIO_ACCOUNT_SID"],
        "From": phone,
        "To": "+447700900000",
        "Body": body,
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
    }


def post_signed(
    client: TestClient,
    path: str,
    params: dict,
    *,
    signed_url: str | None = None,
    headers: dict | None = None,
    token: str = TOKEN,
):
    url = signed_url or PUBLIC + path
    signature = compute_signature(token, url, params)
    return client.post(
        path,
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            **(headers or {}),
        },
    )


def count(app: App, model, *where) -> int:
    with app.sessions() as s:
        return s.scalar(select(func.count(model.id)).where(*where)) or 0


def inbound_rows(app: App) -> int:
    return count(app, Message, Message.direction == Direction.INBOUND)


# --- signatures --------------------------------------------------------------------------


def test_signed_reply_is_stored_answered_and_gets_empty_twiml(
    client: TestClient, twilio_app: App
) -> None:
    enrol_with_open_checkin(twilio_app)
    response = post_signed(client, "/sms/inbound", form(body="8"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.endswith("<Response/>")
    assert count(twilio_app, Answer) == 1
    # The next question went out through the outbox right after the response.
    with twilio_app.sessions() as s:
        last = s.scalars(select(Message).order_by(Message.id.desc())).first()
        assert last.purpose == "question" and last.status == MessageStatus.SENT
        assert last.body.startswith("2/8")


@pytest.mark.parametrize(
    "case", ["missing", "tampered", "wrong_host", "wrong_scheme", "wrong_token", "garbage"]
)
def test_bad_signatures_are_403_and_store_nothing(
    lite: TestClient, lite_app: App, case: str
) -> None:
    client, twilio_app = lite, lite_app
    params = form()
    if case == "missing":
        response = client.post("/sms/inbound", data=params)
    elif case == "tampered":
        signature = compute_signature(TOKEN, PUBLIC + "/sms/inbound", params)
        response = client.post(
            "/sms/inbound",
            data={**params, "Body": "10"},
            headers={"X-Twilio-Signature": signature},
        )
    elif case == "wrong_host":
        response = post_signed(
            client, "/sms/inbound", params, signed_url="https://evil.example/sms/inbound"
        )
    elif case == "wrong_scheme":
        response = post_signed(
            client, "/sms/inbound", params, signed_url="http://tracker.example.org/sms/inbound"
        )
    elif case == "wrong_token":
        response = post_signed(client, "/sms/inbound", params, token="someone-elses-token")
    else:
        response = client.post(
            "/sms/inbound", data=params, headers={"X-Twilio-Signature": "%%%not-base64\x7f"}
        )
    assert response.status_code == 403
    assert inbound_rows(twilio_app) == 0


def test_behind_a_proxy_with_forwarded_https_still_validates(
    lite: TestClient, lite_app: App
) -> None:
    client, twilio_app = lite, lite_app
    response = post_signed(
        client,
        "/sms/inbound",
        form(),
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tracker.example.org"},
    )
    assert response.status_code == 200
    assert inbound_rows(twilio_app) == 1


def test_without_public_url_forwarded_proto_is_used(sqlite_url: str, clock: FrozenClock) -> None:
    app = build_app(sqlite_url, clock, twilio_auth_token=TOKEN)  # simulator backend with a token
    try:
        with TestClient(create_app(app), base_url="http://tracker.example.org") as web:
            params = form()
            ok = post_signed(
                web,
                "/sms/inbound",
                params,
                signed_url="https://tracker.example.org/sms/inbound",
                headers={"X-Forwarded-Proto": "https"},
            )
            assert ok.status_code == 200
            assert web.post("/sms/inbound", data=form(sid="SM" + "b" * 32)).status_code == 403
    finally:
        app.close()


def test_simulator_without_token_needs_no_signature(sqlite_url: str, clock: FrozenClock) -> None:
    app = build_app(sqlite_url, clock)
    try:
        with TestClient(create_app(app)) as web:
            response = web.post("/sms/inbound", data=form())
            assert response.status_code == 200
            assert inbound_rows(app) == 1
    finally:
        app.close()


# --- replay and concurrency --------------------------------------------------------------


def test_replay_is_200_and_creates_no_rows(client: TestClient, twilio_app: App) -> None:
    enrol_with_open_checkin(twilio_app)
    params = form(body="6")
    assert post_signed(client, "/sms/inbound", params).status_code == 200
    with twilio_app.sessions() as s:
        before = s.scalar(select(func.count(Message.id)))
    for _ in range(3):
        assert post_signed(client, "/sms/inbound", params).status_code == 200
    with twilio_app.sessions() as s:
        assert s.scalar(select(func.count(Message.id))) == before
    assert count(twilio_app, Answer) == 1


def test_concurrent_copies_of_one_message_give_one_row(twilio_app: App) -> None:
    enrol_with_open_checkin(twilio_app)
    web = create_app(twilio_app)
    params = form(sid="SM" + "c" * 32, body="9")
    copies = 6
    barrier = threading.Barrier(copies)
    statuses: list[int] = []

    def send() -> None:
        with TestClient(web, base_url="http://internal") as c:
            barrier.wait()
            statuses.append(post_signed(c, "/sms/inbound", params).status_code)

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [200] * copies
    assert inbound_rows(twilio_app) == 1
    assert count(twilio_app, Answer) == 1
    # exactly one reply (question 2) besides the opening and question 1
    assert count(twilio_app, Message, Message.direction == Direction.OUTBOUND) == 3


# --- status callbacks --------------------------------------------------------------------


def _opening(app: App) -> Message:
    with app.sessions() as s:
        return s.scalars(select(Message).where(Message.purpose == "opening")).one()


def status_params(sid: str | None, status: str, code: str | None = None) -> dict:
    params = {"MessageStatus": status, "SmsStatus": status, "AccountSid": "AC" + "1" * 32}
    if sid:
        params["MessageSid"] = sid
        params["SmsSid"] = sid
    if code:
        params["ErrorCode"] = code
    return params


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_status_callbacks_end_at_the_highest_rank(
    client: TestClient, twilio_app: App, seed: int
) -> None:
    enrol_with_open_checkin(twilio_app)
    message = _opening(twilio_app)
    statuses = ["queued", "sending", "sent", "delivered", "sent", "sending"]
    random.Random(seed).shuffle(statuses)
    for i, status in enumerate(statuses):
        # half match by our id in the URL, half by the provider id only
        path = f"/sms/status?mid={message.id}" if i % 2 == 0 else "/sms/status"
        sid = message.provider_sid if i % 2 else None
        assert post_signed(client, path, status_params(sid, status)).status_code == 200
    after = _opening(twilio_app)
    assert after.status == MessageStatus.DELIVERED and after.status_rank == 8


def test_callback_before_send_record_matches_by_our_id(client: TestClient, twilio_app: App) -> None:
    enrol_with_open_checkin(twilio_app)
    with twilio_app.sessions.begin() as s:
        s.get(Message, _opening(twilio_app).id).provider_sid = None
    message = _opening(twilio_app)
    response = post_signed(
        client, f"/sms/status?mid={message.id}", status_params("SM" + "d" * 32, "delivered")
    )
    assert response.status_code == 200
    after = _opening(twilio_app)
    assert after.status == "delivered" and after.provider_sid == "SM" + "d" * 32


def test_unknown_ids_and_statuses_are_200_and_change_nothing(
    client: TestClient, twilio_app: App
) -> None:
    enrol_with_open_checkin(twilio_app)
    for path, params in [
        ("/sms/status?mid=999999", status_params(None, "delivered")),
        ("/sms/status", status_params("SM" + "e" * 32, "delivered")),
        ("/sms/status?mid=abc", status_params(None, "failed", "30006")),
        ("/sms/status", status_params(_opening(twilio_app).provider_sid, "partially_weird")),
        ("/sms/status", {}),
    ]:
        assert post_signed(client, path, params).status_code == 200
    assert _opening(twilio_app).status == MessageStatus.SENT


def test_undelivered_with_permanent_code_fails_checkin_and_alerts(
    client: TestClient, twilio_app: App
) -> None:
    opened = enrol_with_open_checkin(twilio_app)
    message = _opening(twilio_app)
    response = post_signed(
        client,
        f"/sms/status?mid={message.id}",
        status_params(message.provider_sid, "undelivered", "30006"),
    )
    assert response.status_code == 200
    with twilio_app.sessions() as s:
        assert s.get(CheckIn, opened.checkin_id).state == CheckInState.FAILED
        assert s.scalars(select(Alert.kind)).all() == [AlertKind.DELIVERY_PROBLEM]


def test_status_signature_covers_the_query(client: TestClient, twilio_app: App) -> None:
    enrol_with_open_checkin(twilio_app)
    message = _opening(twilio_app)
    params = status_params(message.provider_sid, "delivered")
    response = post_signed(
        client,
        f"/sms/status?mid={message.id}",
        params,
        signed_url=f"{PUBLIC}/sms/status?mid={message.id + 1}",
    )
    assert response.status_code == 403
    assert _opening(twilio_app).status == MessageStatus.SENT


# --- limits ------------------------------------------------------------------------------


def test_oversize_body_is_413(lite: TestClient, lite_app: App) -> None:
    client, twilio_app = lite, lite_app
    params = form(body="x" * (70 * 1024))
    assert post_signed(client, "/sms/inbound", params).status_code == 413
    assert inbound_rows(twilio_app) == 0


def test_oversize_body_without_length_header_is_413(lite: TestClient) -> None:
    client = lite

    def chunks() -> Iterator[bytes]:
        for _ in range(80):
            yield b"Body=" + b"y" * 1024

    response = client.post(
        "/sms/inbound",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_other_methods_are_405(lite: TestClient) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        for path in ("/sms/inbound", "/sms/status"):
            assert lite.request(method, path).status_code == 405, (method, path)


def test_missing_fields_are_400_not_500(lite: TestClient, lite_app: App) -> None:
    client, twilio_app = lite, lite_app
    assert post_signed(client, "/sms/inbound", {"Body": "7"}).status_code == 400
    assert inbound_rows(twilio_app) == 0


# --- connection pool ---------------------------------------------------------------------


@pytest.mark.postgres
def test_a_dead_pooled_connection_is_replaced_without_an_error(
    pg_schema_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping for a connection just given back; an idle one is pinged and, if dead, replaced."""
    from sqlalchemy import create_engine, text

    from tests.conftest import _pg
    from tracker.db import engine as engine_module
    from tracker.db.engine import normalise_url

    app = build_app(pg_schema_url, clock, sms_backend="twilio", public_url=PUBLIC, **TWILIO_ENV)
    pings: list[object] = []
    ping = engine_module._ping

    def counted_ping(dbapi_connection: object) -> None:
        pings.append(dbapi_connection)
        ping(dbapi_connection)

    monkeypatch.setattr(engine_module, "_ping", counted_ping)
    try:
        enrol_with_open_checkin(app)
        with TestClient(create_app(app), base_url="http://internal:8000") as web:
            assert post_signed(web, "/sms/inbound", form(sid="SM" + "1" * 32)).status_code == 200
            # Connections handed back moments ago are trusted: no ping round trip.
            pings.clear()
            assert post_signed(web, "/sms/inbound", form(sid="SM" + "2" * 32)).status_code == 200
            assert pings == []
            # Every idle connection of the pool dies (a database restart, say) ...
            idle = [app.engine.connect() for _ in range(app.engine.pool.checkedin())]
            pids = [conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() for conn in idle]
            for conn in idle:
                conn.close()
            admin = create_engine(normalise_url(_pg() or ""), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for pid in pids:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.dispose()
            # ... and once they have sat idle long enough to be pinged, the next text still
            # goes through: the dead ones are discarded on checkout, not failed on.
            monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
            assert post_signed(web, "/sms/inbound", form(sid="SM" + "3" * 32)).status_code == 200
            assert pings
        assert inbound_rows(app) == 3
        assert count(app, Answer) == 3
    finally:
        app.close()
