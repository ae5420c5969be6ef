"""A patient's 6-month check-in by text through the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy import func, select

from tests.sms_setup import OTHER_PHONE, PATIENT_PHONE, enrol_with_open_checkin
from tracker.app import App
from tracker.db.tables import Alert, Answer, CheckIn, Message, Patient
from tracker.domain import AlertKind, CheckInState, ContactState, Direction, MessageStatus
from tracker.services.inbound import receive_and_reply
from tracker.sms.port import InboundSms

_sids = count(1)


def text(app: App, body: str, *, phone: str = PATIENT_PHONE, media: int = 0):
    sid = f"SMtest{next(_sids):026d}"
    return receive_and_reply(app, InboundSms(sid, phone, body, media_count=media))


def outbound(app: App) -> list[Message]:
    with app.sessions() as s:
        return list(
            s.scalars(
                select(Message).where(Message.direction == Direction.OUTBOUND).order_by(Message.id)
            )
        )


def test_patient_completes_six_month_checkin(app: App) -> None:
    opened = enrol_with_open_checkin(app)
    replies = ["8", "7/10", "seven", "2", "hardly ever", "3", "yes", "no thanks"]
    for body in replies:
        app.clock.advance(minutes=2)
        result = text(app, body)
        assert len(result.replies) == 1
    assert "Thank you" in result.replies[0]
    with app.sessions() as s:
        checkin = s.get(CheckIn, opened.checkin_id)
        assert checkin.state == CheckInState.COMPLETED
        assert checkin.next_reminder_at is None
        assert checkin.question_index == 8
        answers = s.scalars(select(Answer).order_by(Answer.id)).all()
        assert [(a.question_key, a.value, a.outcome) for a in answers] == [
            ("life_satisfaction", 8, "parsed"),
            ("worthwhile", 7, "parsed"),
            ("happy", 7, "parsed"),
            ("anxious", 2, "parsed"),
            ("lonely", 2, "parsed"),
            ("gp_visits", 3, "parsed"),
            ("community_activity", 1, "parsed"),
            ("recontact_requested", 0, "parsed"),
        ]
        assert s.scalar(select(func.count(Alert.id))) == 0
    sent = outbound(app)
    # opening + 8 questions + closing, each handed to the simulator at once
    assert [m.purpose for m in sent] == ["opening"] + ["question"] * 8 + ["closing"]
    assert all(m.status == MessageStatus.SENT and m.provider_sid.startswith("SM") for m in sent)
    assert [m.body.split(" ")[0] for m in sent[1:9]] == [f"{i}/8" for i in range(1, 9)]


def test_clarification_invalid_skip_and_recontact(app: App) -> None:
    opened = enrol_with_open_checkin(app)
    steps = [
        ("11", "clarification"),  # out of range: one clarification
        ("lots", "question"),  # second failure: invalid, move on
        ("7 8", "clarification"),  # ambiguous: ask again
        ("SKIP", "question"),
        ("5", "question"),
        ("4", "question"),
        ("often", "question"),
        ("0", "question"),
        ("no", "question"),
        ("yes please", "closing"),
    ]
    for body, purpose in steps:
        result = text(app, body)
        assert outbound(app)[-1].purpose == purpose, body
        assert result.reply_ids
    with app.sessions() as s:
        answers = s.scalars(select(Answer).order_by(Answer.id)).all()
        assert [(a.question_key, a.outcome) for a in answers[:4]] == [
            ("life_satisfaction", "invalid"),
            ("worthwhile", "ambiguous"),
            ("worthwhile", "skipped"),
            ("happy", "parsed"),
        ]
        alert = s.scalars(select(Alert)).one()
        assert alert.kind == AlertKind.RECONTACT and alert.checkin_id == opened.checkin_id
        assert s.get(CheckIn, opened.checkin_id).state == CheckInState.COMPLETED


def test_picture_only_is_stored_and_question_repeated(app: App) -> None:
    enrol_with_open_checkin(app)
    result = text(app, "", media=1)
    assert result.replies[0].startswith("1/8 ")
    with app.sessions() as s:
        inbound = s.scalars(select(Message).where(Message.direction == Direction.INBOUND)).one()
        assert inbound.media_count == 1 and inbound.status == MessageStatus.RECEIVED
        assert s.scalar(select(func.count(Answer.id))) == 0


def test_late_reply_is_stored_not_scored(app: App) -> None:
    opened = enrol_with_open_checkin(app)
    app.clock.advance(days=29)
    result = text(app, "8")
    assert "closed" in result.replies[0]
    with app.sessions() as s:
        answer = s.scalars(select(Answer)).one()
        assert answer.outcome == "late" and answer.value is None
        assert s.get(CheckIn, opened.checkin_id).question_index == 0


def test_stop_stops_everything(app: App) -> None:
    opened = enrol_with_open_checkin(app)
    text(app, "8")
    before = len(outbound(app))
    result = text(app, "Stop")
    assert result.replies == []  # the carrier confirms; we send nothing
    assert len(outbound(app)) == before
    with app.sessions() as s:
        assert s.get(Patient, opened.patient_id).contact_state == ContactState.STOPPED
        checkin = s.get(CheckIn, opened.checkin_id)
        assert checkin.state == CheckInState.CANCELLED and checkin.next_reminder_at is None
    # Later answers are not taken and get no reply; START resumes contact.
    assert text(app, "7").replies == []
    assert text(app, "START").replies == []
    with app.sessions() as s:
        assert s.get(Patient, opened.patient_id).contact_state == ContactState.ACTIVE


def test_stop_sentence_raises_review_and_yes_restarts(app: App) -> None:
    opened = enrol_with_open_checkin(app)
    assert text(app, "please stop texting me").replies == []
    with app.sessions() as s:
        assert s.get(Patient, opened.patient_id).contact_state == ContactState.STOPPED
        assert s.scalars(select(Alert.kind)).all() == [AlertKind.OPT_OUT_REVIEW]
    text(app, "YES")
    with app.sessions() as s:
        assert s.get(Patient, opened.patient_id).contact_state == ContactState.ACTIVE


def test_help_replies_with_contact_details(app: App) -> None:
    enrol_with_open_checkin(app)
    assert "contact your GP practice" in text(app, "help").replies[0]


@pytest.mark.parametrize("who", ["enrolled", "stopped", "unknown"])
def test_risk_always_gets_signposting_and_alert(app: App, who: str) -> None:
    if who != "unknown":
        state = ContactState.STOPPED if who == "stopped" else ContactState.ACTIVE
        enrol_with_open_checkin(app, contact_state=state)
    phone = OTHER_PHONE if who == "unknown" else PATIENT_PHONE
    result = text(app, "i want to kil myself", phone=phone)
    assert len(result.replies) == 1 and "116 123" in result.replies[0]
    assert "85258" in result.replies[0] and "999" in result.replies[0]
    with app.sessions() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.kind == AlertKind.RISK
        if who == "unknown":
            assert alert.patient_id is None
            assert alert.phone_index == app.crypto.phone_index(OTHER_PHONE)
        else:
            assert alert.patient_id is not None
        assert "want to kil" not in (alert.detail or "")  # a category, never the body
        # Nothing was scored from a risky text.
        assert s.scalar(select(func.count(Answer.id))) == 0
    assert outbound(app)[-1].status == MessageStatus.SENT


def test_unknown_sender_gets_neutral_reply_revealing_nothing(app: App) -> None:
    enrol_with_open_checkin(app)
    result = text(app, "8", phone=OTHER_PHONE)
    assert len(result.replies) == 1
    reply = result.replies[0]
    for word in ("link worker", "social prescribing", "check-in", "1/8", "question"):
        assert word not in reply
    with app.sessions() as s:
        inbound = s.scalars(
            select(Message).where(
                Message.direction == Direction.INBOUND,
                Message.phone_index == app.crypto.phone_index(OTHER_PHONE),
            )
        ).one()
        assert inbound.patient_id is None
        assert s.scalar(select(func.count(Answer.id))) == 0
    # STOP from an unknown number: no reply at all.
    assert text(app, "STOP", phone=OTHER_PHONE).replies == []


def test_duplicate_delivery_gives_one_answer_and_one_reply(app: App) -> None:
    enrol_with_open_checkin(app)
    sms = InboundSms("SMdup0000000000000000000000000001", PATIENT_PHONE, "6")
    first = receive_and_reply(app, sms)
    for _ in range(2):
        again = receive_and_reply(app, sms)
        assert again.duplicate and again.message_id == first.message_id and not again.reply_ids
    with app.sessions() as s:
        assert s.scalar(select(func.count(Answer.id))) == 1
        inbound = select(func.count(Message.id)).where(Message.direction == Direction.INBOUND)
        assert s.scalar(inbound) == 1
    assert len(outbound(app)) == 3  # opening, question 1, question 2


def test_no_log_line_holds_phone_or_body(app: App, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    enrol_with_open_checkin(app)
    secret_body = "zebra7quartz"
    for body in ("8", secret_body, "I want to end my life", "stop texting me"):
        text(app, body)
    text(app, "hello " + secret_body, phone=OTHER_PHONE)
    assert caplog.records, "the pipeline logs something"
    for record in caplog.records:
        line = record.getMessage()
        for needle in (PATIENT_PHONE, OTHER_PHONE, PATIENT_PHONE[3:], secret_body, "end my life"):
            assert needle not in line


def test_reminder_cleared_window_and_clock(app: App) -> None:
    opened = enrol_with_open_checkin(app)
    app.clock.advance(timedelta(days=27, hours=23))
    result = text(app, "9")
    assert result.replies[0].startswith("2/8")
    with app.sessions() as s:
        assert s.get(CheckIn, opened.checkin_id).question_index == 1


# --- the same conversation through a Twilio-compatible server ------------------------------


def test_checkin_through_twilio_compatible_server(db_url: str) -> None:
    from urllib.parse import urlencode

    from fastapi.testclient import TestClient

    from tests.conftest import START, make_settings
    from tests.contract.twilio_fake import FakeTwilio
    from tracker.app import build
    from tracker.clock import FrozenClock
    from tracker.db.engine import make_engine
    from tracker.db.migrate import upgrade
    from tracker.sms.twilio import compute_signature
    from tracker.web.app import create_app

    fake = FakeTwilio(account_sid="AC" + "3" * 32).start()
    public = "https://tracker.example.org"
    settings = make_settings(
        db_url,
        sms_backend="twilio",
        public_url=public,
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN="e2e-token",
        TWILIO_FROM_NUMBER="+447700900000",
        TWILIO_API_BASE_URL=fake.base_url,
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    app = build(settings, clock=FrozenClock(START), engine=engine)
    try:
        opened = enrol_with_open_checkin(app)
        web = TestClient(create_app(app))

        def signed_post(path: str, params: dict) -> int:
            signature = compute_signature("e2e-token", public + path, params)
            return web.post(
                path,
                content=urlencode(params),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                },
            ).status_code

        for i, body in enumerate(["6", "6", "5", "3", "often", "2", "no", "yes"]):
            app.clock.advance(minutes=3)
            params = {"MessageSid": f"SMe2e{i:029d}", "From": PATIENT_PHONE, "Body": body}
            assert signed_post("/sms/inbound", params) == 200
        # Twilio got: opening, 8 questions, closing, each with our status callback URL
        bodies = [m["body"] for m in fake.messages]
        assert len(bodies) == 10 and bodies[-1].startswith("Thank you")
        assert all(m["to"] == PATIENT_PHONE for m in fake.messages)
        assert all(
            m["status_callback"].startswith(public + "/sms/status?mid=") for m in fake.messages
        )
        # delivery callbacks come back and are applied
        for m in fake.messages:
            params = {"MessageSid": m["sid"], "MessageStatus": "delivered"}
            assert signed_post(m["status_callback"][len(public) :], params) == 200
        with app.sessions() as s:
            checkin = s.get(CheckIn, opened.checkin_id)
            assert checkin.state == CheckInState.COMPLETED
            assert s.scalar(select(func.count(Answer.id))) == 8
            statuses = s.scalars(
                select(Message.status).where(Message.direction == Direction.OUTBOUND)
            ).all()
            assert statuses == [MessageStatus.DELIVERED] * 10
            assert [a.kind for a in s.scalars(select(Alert))] == [AlertKind.RECONTACT]
    finally:
        app.close()
        fake.stop()


def test_simulator_fault_plan_feeds_the_outbox(app: App) -> None:
    from tracker.services import outbox
    from tracker.sms.port import SmsError
    from tracker.sms.simulator import SENT_BUT_UNKNOWN, FaultPlan, SimulatorGateway

    gateway = SimulatorGateway(app, FaultPlan([SENT_BUT_UNKNOWN, SmsError("busy", code="20429")]))
    app._gateway = gateway
    opened = enrol_with_open_checkin(app, send_opening=True)
    with app.sessions() as s:
        opening, question = s.scalars(
            select(Message).where(Message.checkin_id == opened.checkin_id).order_by(Message.id)
        ).all()
        assert opening.status == MessageStatus.UNKNOWN and opening.provider_sid
        assert question.status == MessageStatus.FAILED and question.error_code == "20429"
        sms = outbox.outbound_sms(app, s, opening)
    # After an unknown outcome the simulator's record says the text did go.
    found = gateway.find_sent(sms, since=app.clock.now() - timedelta(minutes=5))
    assert found is not None and found.provider_sid == opening.provider_sid


AWKWARD = ["7\x00", "\x00\x00", "😀👍", "٧", "x" * 1600, "", "ＳＴＯＰ texting me"]


def test_awkward_bodies_are_stored_and_never_crash(app: App) -> None:
    enrol_with_open_checkin(app)
    for body in AWKWARD:
        result = text(app, body)
        with app.sessions() as s:
            inbound = s.get(Message, result.message_id)
            assert inbound.status == MessageStatus.RECEIVED, body
            assert "\x00" not in inbound.body
