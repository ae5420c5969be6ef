"""SMS webhooks: `POST /sms/inbound` (a patient's text) and `POST /sms/status` (delivery).

Both check `X-Twilio-Signature` with twilio's RequestValidator when Twilio is the backend (or
whenever an auth token is configured), against the URL Twilio called: `TRACKER_PUBLIC_URL` +
path + query, so a TLS-terminating proxy in front changes nothing. A missing, tampered or
wrong-URL signature is a 403, never a 500. Bodies over 64 KiB are refused (413) before they
are parsed; other methods get 405.

Replies go through the outbox, not in the TwiML: one consistent record of every text with
its delivery status, STOP cancellation and retries. The inbound webhook therefore answers an
empty `<Response/>` as soon as the raw text is stored and interpreted, and the replies are
handed to the provider right after the response (a background task: seconds, not a tick).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from tracker.app import App
from tracker.config import Settings
from tracker.services import delivery_status, inbound
from tracker.sms.port import DeliveryReport, InboundSms

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWIML_TYPE = "application/xml"

router = APIRouter(tags=["sms"])


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > MAX_BODY_BYTES:
                raise _TooLarge
        except ValueError:
            raise _TooLarge from None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _signature_required(settings: Settings) -> bool:
    return settings.sms_backend == "twilio" or settings.twilio_auth_token is not None


def signed_url(request: Request, settings: Settings) -> str:
    """The URL Twilio signed: the configured public URL, else what the proxy says it was."""
    path = request.url.path
    query = request.url.query
    if settings.public_url:
        url = settings.public_url.rstrip("/") + path
    else:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        scheme = proto or request.url.scheme
        host = request.headers.get("host") or request.url.netloc
        url = f"{scheme}://{host}{path}"
    return f"{url}?{query}" if query else url


def _authentic(request: Request, settings: Settings, params: list[tuple[str, str]]) -> bool:
    if not _signature_required(settings):
        return True
    if settings.twilio_auth_token is None:
        return False
    from tracker.sms.twilio import signature_valid

    signature = request.headers.get("x-twilio-signature", "")
    return signature_valid(
        settings.twilio_auth_token.get_secret_value(),
        signed_url(request, settings),
        params,
        signature,
    )


async def _checked_form(request: Request, app: App) -> list[tuple[str, str]] | Response:
    try:
        raw = await _read_body(request)
    except _TooLarge:
        return PlainTextResponse("request body too large", status_code=413)
    params = parse_qsl(
        raw.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=500
    ) if raw else []  # fmt: skip
    if not _authentic(request, app.settings, params):
        log.warning("rejected %s: missing or invalid X-Twilio-Signature", request.url.path)
        return PlainTextResponse("invalid signature", status_code=403)
    return params


def _first(params: list[tuple[str, str]], *names: str) -> str | None:
    for name in names:
        for key, value in params:
            if key == name:
                return value
    return None


@router.post("/sms/inbound")
async def sms_inbound(request: Request, background: BackgroundTasks) -> Response:
    """A patient's text from Twilio (form fields); answers TwiML."""
    app: App = request.app.state.tracker
    params = await _checked_form(request, app)
    if isinstance(params, Response):
        return params
    sid = _first(params, "MessageSid", "SmsSid", "SmsMessageSid")
    sender = _first(params, "From")
    if not sid or not sender:
        return PlainTextResponse("MessageSid and From are required", status_code=400)
    try:
        media = int(_first(params, "NumMedia") or 0)
    except ValueError:
        media = 0
    sms = InboundSms(
        provider_sid=sid[:64],
        from_number=sender,
        body=_first(params, "Body") or "",
        media_count=media,
        to_number=_first(params, "To"),
    )
    try:
        result = await run_in_threadpool(inbound.receive, app, sms)
    except OperationalError:
        log.exception("database unavailable while receiving a text")
        return PlainTextResponse(
            "database unavailable", status_code=503, headers={"Retry-After": "30"}
        )
    if result.reply_ids:
        background.add_task(inbound.deliver_replies, app, result)
    return Response(EMPTY_TWIML, media_type=TWIML_TYPE)


@router.post("/sms/status")
async def sms_status(request: Request) -> Response:
    """A delivery status callback; unknown ids answer 200 so the provider stops retrying."""
    app: App = request.app.state.tracker
    params = await _checked_form(request, app)
    if isinstance(params, Response):
        return params
    status = _first(params, "MessageStatus", "SmsStatus")
    if not status:
        return Response(status_code=200)
    mid = request.query_params.get("mid")
    report = DeliveryReport(
        provider_sid=_first(params, "MessageSid", "SmsSid"),
        message_id=int(mid) if mid and mid.isdigit() and len(mid) < 19 else None,
        status=status,
        error_code=_first(params, "ErrorCode") or None,
    )
    try:
        await run_in_threadpool(delivery_status.apply_report, app, report)
    except OperationalError:
        log.exception("database unavailable while applying a delivery status")
        return PlainTextResponse(
            "database unavailable", status_code=503, headers={"Retry-After": "30"}
        )
    return Response(status_code=200)
