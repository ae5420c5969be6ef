"""The Twilio gateway through the real `twilio` client against a local Twilio-compatible server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import TEST_KEY
from tests.contract.twilio_fake import Drop, Fail, FakeTwilio, Hang, Ok
from tracker.config import load_settings
from tracker.sms.port import OutboundSms, SmsError
from tracker.sms.twilio import TwilioGateway, compute_signature, signature_valid

ACCOUNT = "AC" + "1" * 32
TOKEN = "test-auth-token"
TO = "+447700900123"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    server = FakeTwilio(account_sid=ACCOUNT).start()
    try:
        yield server
    finally:
        server.stop()


def gateway(fake: FakeTwilio, **overrides: object) -> TwilioGateway:
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": "+447700900000",
        "TWILIO_API_BASE_URL": fake.base_url,
        "TRACKER_SMS_BACKEND": "twilio",
        "TRACKER_PUBLIC_URL": "https://tracker.example.org",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    settings = load_settings(env, database_url="sqlite:///unused.db", secret_key=TEST_KEY)
    return TwilioGateway(settings)


SMS = OutboundSms(message_id=42, to=TO, body="1/8 Overall, how satisfied are you?")


def test_send_posts_through_the_real_client(fake: FakeTwilio) -> None:
    result = gateway(fake, twilio_timeout_seconds=2).send(SMS)
    assert result.provider_sid.startswith("SM") and len(result.provider_sid) == 34
    assert result.status == "queued"
    (req,) = fake.requests
    assert req.method == "POST" and req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert req.form["To"] == TO and req.form["Body"] == SMS.body
    assert req.form["From"] == "+447700900000"
    assert req.form["StatusCallback"] == "https://tracker.example.org/sms/status?mid=42"
    user, _, password = base64.b64decode(req.authorization.split()[1]).decode().partition(":")
    assert (user, password) == (ACCOUNT, TOKEN)


def test_messaging_service_replaces_from(fake: FakeTwilio) -> None:
    gateway(fake, TWILIO_MESSAGING_SERVICE_SID="MG" + "2" * 32).send(SMS)
    form = fake.requests[0].form
    assert form["MessagingServiceSid"] == "MG" + "2" * 32 and "From" not in form


@pytest.mark.parametrize(
    ("behaviour", "permanent", "stopped", "code"),
    [
        (Fail(400, 21610), True, True, "21610"),
        (Fail(400, 30005), True, False, "30005"),
        (Fail(400, 30006), True, False, "30006"),
        (Fail(400, 21211), True, False, "21211"),
        (Fail(400, 21614), True, False, "21614"),
        (Fail(429, 20429), False, False, "20429"),
        (Fail(500, None), False, False, "500"),
        (Fail(503, None), False, False, "503"),
    ],
)
def test_error_codes_map_to_outcomes(
    fake: FakeTwilio, behaviour: Fail, permanent: bool, stopped: bool, code: str
) -> None:
    fake.then(behaviour)
    with pytest.raises(SmsError) as caught:
        gateway(fake).send(SMS)
    error = caught.value
    assert (error.permanent, error.stopped, error.code) == (permanent, stopped, code)
    assert not error.outcome_unknown
    assert len(fake.requests) == 1  # the client never retried a POST by itself


def test_rate_limit_carries_retry_after(fake: FakeTwilio) -> None:
    fake.then(Fail(429, 20429, retry_after="7"))
    with pytest.raises(SmsError) as caught:
        gateway(fake).send(SMS)
    assert caught.value.retry_after == 7.0 and not caught.value.permanent


def test_timeout_after_sending_is_unknown_and_find_sent_finds_it(fake: FakeTwilio) -> None:
    gw = gateway(fake, twilio_timeout_seconds=0.3)
    fake.then(Hang(0.8))
    since = datetime.now(UTC) - timedelta(seconds=5)
    with pytest.raises(SmsError) as caught:
        gw.send(SMS)
    assert caught.value.outcome_unknown and not caught.value.permanent
    found = gw.find_sent(SMS, since)
    assert found is not None and found.provider_sid == fake.messages[0]["sid"]
    other = OutboundSms(message_id=43, to=TO, body="a text that never went")
    assert gw.find_sent(other, since) is None
    list_request = fake.requests[-1]
    assert list_request.method == "GET" and list_request.query["To"] == [TO]


def test_connection_dropped_after_sending_is_unknown(fake: FakeTwilio) -> None:
    fake.then(Drop())
    with pytest.raises(SmsError) as caught:
        gateway(fake).send(SMS)
    assert caught.value.outcome_unknown


def test_connect_failure_before_sending_is_retryable(fake: FakeTwilio) -> None:
    base = fake.base_url
    fake.stop()
    gw = gateway(fake, TWILIO_API_BASE_URL=base, twilio_timeout_seconds=1)
    with pytest.raises(SmsError) as caught:
        gw.send(SMS)
    assert not caught.value.outcome_unknown and not caught.value.permanent


def test_status_is_kept_from_the_reply(fake: FakeTwilio) -> None:
    fake.then(Ok(status="accepted"))
    assert gateway(fake).send(SMS).status == "accepted"


def test_signature_helper_round_trip() -> None:
    url = "https://tracker.example.org/sms/inbound"
    params = {"From": TO, "Body": "7", "MessageSid": "SM1"}
    signature = compute_signature(TOKEN, url, params)
    assert signature_valid(TOKEN, url, params, signature)
    assert not signature_valid(TOKEN, url, {**params, "Body": "8"}, signature)
    assert not signature_valid(TOKEN, url.replace("https", "http"), params, signature)
    assert not signature_valid(TOKEN, url, params, "")
    assert not signature_valid(TOKEN, url, params, "not base64 !!")
