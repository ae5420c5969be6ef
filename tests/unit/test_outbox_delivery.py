"""The outbox's send path: `deliver_now` (a reply the caller already holds) and the one-UPDATE
record of a send, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from tests.sms_setup import PATIENT_PHONE, enrol_with_open_checkin
from tracker.app import App
from tracker.db.tables import CheckIn, Message
from tracker.domain import CheckInState, MessageStatus, status_rank
from tracker.services import outbox
from tracker.sms.port import OutboundSms, SendResult, SmsError
from tracker.sms.simulator import FaultPlan, SimulatorGateway


def _queue(app: App, checkin_id: int | None = None, body: str = "Thank you.") -> int:
    with app.sessions.begin() as session:
        checkin = session.get(CheckIn, checkin_id) if checkin_id else None
        from tracker.db.tables import Patient

        patient = session.query(Patient).one()
        message = outbox.queue_text(
            session,
            now=app.clock.now(),
            body=body,
            purpose="closing",
            patient=patient,
            checkin=checkin,
        )
        session.flush()
        return message.id


def _message(app: App, message_id: int) -> Message:
    with app.sessions() as session:
        message = session.get(Message, message_id)
        assert message is not None
        return message


def test_deliver_now_sends_once_and_records_the_send(app: App) -> None:
    enrol_with_open_checkin(app)
    message_id = _queue(app)
    sms = OutboundSms(message_id=message_id, to=PATIENT_PHONE, body="Thank you.")

    delivery = outbox.deliver_now(app, sms)

    assert delivery == outbox.Delivery(outbox.DeliveryOutcome.SENT, message_id)
    assert app.gateway.sent[-1] == sms
    row = _message(app, message_id)
    assert row.status == MessageStatus.SENT
    assert row.status_rank == status_rank(MessageStatus.SENT)
    assert row.provider_sid and row.provider_sid.startswith("SM")
    assert row.sent_at == app.clock.now() and row.status_updated_at == app.clock.now()

    # A second attempt finds it no longer pending and sends nothing.
    sent = len(app.gateway.sent)
    assert outbox.deliver_now(app, sms).outcome == outbox.DeliveryOutcome.SENT
    assert len(app.gateway.sent) == sent


def test_deliver_now_never_sends_a_cancelled_text(app: App) -> None:
    enrol_with_open_checkin(app)
    message_id = _queue(app)
    with app.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=MessageStatus.CANCELED, status_rank=status_rank(MessageStatus.CANCELED))
        )
    outbox.deliver_now(app, OutboundSms(message_id=message_id, to=PATIENT_PHONE, body="x"))
    assert all(sms.message_id != message_id for sms in app.gateway.sent)
    assert _message(app, message_id).status == MessageStatus.CANCELED


class _CallbackFirst:
    """A provider whose `delivered` callback lands before `send` returns."""

    name = "callback-first"

    def __init__(self, app: App) -> None:
        self.app = app

    def send(self, sms: OutboundSms) -> SendResult:
        with self.app.sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.id == sms.message_id)
                .values(
                    status=MessageStatus.DELIVERED,
                    status_rank=status_rank(MessageStatus.DELIVERED),
                    status_updated_at=self.app.clock.now(),
                )
            )
        return SendResult(provider_sid="SM" + "d" * 32, status=MessageStatus.SENT)


def test_a_status_callback_that_came_first_is_never_undone(app: App) -> None:
    enrol_with_open_checkin(app)
    app._gateway = _CallbackFirst(app)
    for deliver in (
        lambda mid: outbox.deliver_now(
            app, OutboundSms(message_id=mid, to=PATIENT_PHONE, body="x")
        ),
        lambda mid: outbox.deliver(app, mid),
    ):
        message_id = _queue(app)
        with app.sessions.begin() as session:  # one provider id per text
            session.execute(
                update(Message)
                .where(Message.provider_sid == "SM" + "d" * 32)
                .values(provider_sid=None)
            )
        assert deliver(message_id).outcome == outbox.DeliveryOutcome.SENT
        row = _message(app, message_id)
        assert row.status == MessageStatus.DELIVERED
        assert row.status_rank == status_rank(MessageStatus.DELIVERED)
        assert row.provider_sid == "SM" + "d" * 32 and row.sent_at == app.clock.now()


def test_deliver_now_permanent_failure_fails_the_checkin(app: App) -> None:
    opened = enrol_with_open_checkin(app)
    app._gateway = SimulatorGateway(
        app, FaultPlan([SmsError("bad number", code="21211", permanent=True)])
    )
    message_id = _queue(app, opened.checkin_id)
    sms = OutboundSms(message_id=message_id, to=PATIENT_PHONE, body="Thank you.")
    delivery = outbox.deliver_now(app, sms)
    assert delivery.outcome == outbox.DeliveryOutcome.PERMANENT and delivery.error_code == "21211"
    row = _message(app, message_id)
    assert row.status == MessageStatus.FAILED and row.error_code == "21211"
    with app.sessions() as session:
        checkin = session.get(CheckIn, opened.checkin_id)
        assert checkin is not None and checkin.state == CheckInState.FAILED


def test_outbox_row_matches_queue_text(app: App) -> None:
    enrol_with_open_checkin(app)
    message_id = _queue(app, body="ж" * 80)
    row = _message(app, message_id)
    expected = outbox.outbox_row(
        now=app.clock.now(), body="ж" * 80, purpose="closing", patient_id=row.patient_id
    )
    for column, value in expected.items():
        assert getattr(row, column) == value, column
    assert row.segments == 2  # not GSM-7: 70 per single text, 67 per part
