"""The Twilio gateway: the only module that imports `twilio`.

Sends with the real twilio client over a `TwilioHttpClient` that has a timeout (it has none by
default) and never retries a POST by itself. `TWILIO_API_BASE_URL` sends every request to a
Twilio-compatible server instead (contract tests, staging): the client still builds its usual
`https://api.twilio.com/2010-04-01/...` URLs and our http client swaps the scheme and host.

Provider failures become `SmsError`s that say what may be done next:

    21610 (recipient sent STOP)               -> stopped (never retry)
    30005, 30006, 21211, 21614                -> permanent (number cannot take texts)
    20429, HTTP 429, HTTP 5xx, 401/403        -> retryable (Retry-After honoured)
    connection refused / connect timeout      -> retryable (the request never left)
    read timeout / connection dropped         -> outcome unknown: reconcile with find_sent()
    other 4xx                                  -> permanent

The client's own request logging prints phone numbers and bodies: it goes to a silent logger.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from tracker.config import ConfigError, Settings
from tracker.domain import MessageStatus
from tracker.sms.port import OutboundSms, SendResult, SmsError

log = logging.getLogger(__name__)

STOPPED_CODES = frozenset({21610})
PERMANENT_CODES = frozenset({30005, 30006, 21211, 21614})
RATE_LIMIT_CODES = frozenset({20429})

# twilio's http client logs query strings (To=+44...) at INFO: keep it quiet whatever the root
# logger's level.
_silent = logging.getLogger("tracker.sms.twilio.vendor")
_silent.propagate = False
_silent.addHandler(logging.NullHandler())
_silent.setLevel(logging.CRITICAL + 1)


class _RoutedHttpClient(TwilioHttpClient):
    """TwilioHttpClient with a timeout, optional base-URL rewrite, and the last response's
    headers kept per thread (TwilioRestException drops Retry-After)."""

    def __init__(self, *, timeout: float, base_url: str | None) -> None:
        super().__init__(timeout=timeout, logger=_silent, max_retries=0)
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None
        self._local = threading.local()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self._base is not None:
            parts = urlsplit(url)
            url = urlunsplit(
                (
                    self._base.scheme,
                    self._base.netloc,
                    self._base.path + parts.path,
                    parts.query,
                    parts.fragment,
                )
            )
        self._local.headers = {}
        response = super().request(method, url, *args, **kwargs)
        self._local.headers = dict(response.headers or {})
        return response

    def last_headers(self) -> Mapping[str, str]:
        return getattr(self._local, "headers", {}) or {}


class TwilioGateway:
    name = "twilio"

    def __init__(self, settings: Settings) -> None:
        if not settings.twilio_account_sid or not settings.twilio_auth_token:
            raise ConfigError(
                "TRACKER_SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
            )
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            raise ConfigError(
                "TRACKER_SMS_BACKEND=twilio needs TWILIO_FROM_NUMBER or "
                "TWILIO_MESSAGING_SERVICE_SID"
            )
        self._settings = settings
        self._http = _RoutedHttpClient(
            timeout=settings.twilio_timeout_seconds, base_url=settings.twilio_api_base_url
        )
        self._client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=self._http,
        )
        self._public_url = (settings.public_url or "").rstrip("/")

    def status_callback(self, message_id: int) -> str | None:
        """Where Twilio reports delivery; carries our id so early callbacks still match."""
        if not self._public_url:
            return None
        return f"{self._public_url}/sms/status?mid={message_id}"

    def send(self, sms: OutboundSms) -> SendResult:
        sender: dict[str, str] = {}
        if self._settings.twilio_messaging_service_sid:
            sender["messaging_service_sid"] = self._settings.twilio_messaging_service_sid
        else:
            sender["from_"] = self._settings.twilio_from_number or ""
        callback = self.status_callback(sms.message_id)
        if callback:
            sender["status_callback"] = callback
        try:
            created = self._client.messages.create(to=sms.to, body=sms.body, **sender)
        except TwilioRestException as exc:
            raise self._rest_error(exc) from None
        except requests.exceptions.RequestException as exc:
            raise _transport_error(exc) from None
        except TwilioException as exc:
            # A reply we could not read: Twilio may well have taken the text.
            raise SmsError(
                f"unreadable reply from Twilio ({type(exc).__name__})", outcome_unknown=True
            ) from None
        return SendResult(provider_sid=str(created.sid), status=_status(created.status))

    def find_sent(self, sms: OutboundSms, since: datetime) -> SendResult | None:
        """Twilio's record of a text to this number with this body sent since `since`."""
        try:
            found = self._client.messages.list(
                to=sms.to, date_sent_after=since - timedelta(minutes=1), limit=200
            )
        except TwilioRestException as exc:
            raise self._rest_error(exc) from None
        except requests.exceptions.RequestException as exc:
            raise SmsError(f"could not reach Twilio ({type(exc).__name__})") from None
        callback = self.status_callback(sms.message_id)
        for item in found:
            if (item.body or "") == sms.body or (
                callback is not None and getattr(item, "status_callback", None) == callback
            ):
                return SendResult(provider_sid=str(item.sid), status=_status(item.status))
        return None

    def _rest_error(self, exc: TwilioRestException) -> SmsError:
        code = int(exc.code) if exc.code is not None else None
        status = int(exc.status or 0)
        label = str(code if code is not None else status)
        if code in STOPPED_CODES:
            return SmsError("recipient has opted out (STOP)", code=label, stopped=True)
        if code in PERMANENT_CODES:
            return SmsError(
                f"Twilio error {code}: this number cannot take texts", code=label, permanent=True
            )
        if code in RATE_LIMIT_CODES or status == 429 or status >= 500:
            return SmsError(
                f"Twilio is busy or failing (HTTP {status}, code {code}); retry later",
                code=label,
                retry_after=_retry_after(self._http.last_headers()),
            )
        if status in (401, 403):
            return SmsError(
                f"Twilio refused our credentials (HTTP {status}): check TWILIO_ACCOUNT_SID "
                "and TWILIO_AUTH_TOKEN",
                code=label,
            )
        return SmsError(f"Twilio rejected the text (HTTP {status}, code {code})", code=label,
                        permanent=True)  # fmt: skip


def _transport_error(exc: requests.exceptions.RequestException) -> SmsError:
    if isinstance(exc, requests.exceptions.ConnectTimeout) or _never_connected(exc):
        return SmsError(f"could not connect to Twilio ({type(exc).__name__}); retry later")
    # The request may have reached Twilio: never resend without asking (find_sent).
    return SmsError(
        f"no answer from Twilio after sending ({type(exc).__name__})", outcome_unknown=True
    )


def _never_connected(exc: BaseException) -> bool:
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    seen: list[object] = [exc, *exc.args]
    while seen:
        item = seen.pop()
        if isinstance(item, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError):
            return True
        reason = getattr(item, "reason", None)
        if reason is not None and reason is not item:
            seen.append(reason)
    return False


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _status(raw: object) -> str:
    try:
        return MessageStatus(str(raw).lower())
    except ValueError:
        return MessageStatus.QUEUED


# --- webhooks ----------------------------------------------------------------------------


def signature_valid(
    auth_token: str, url: str, params: Mapping[str, str] | list[tuple[str, str]], signature: str
) -> bool:
    """Check `X-Twilio-Signature` for a form POST to `url` with twilio's RequestValidator."""
    if not signature:
        return False
    validator = _validator(auth_token)
    try:
        return bool(validator.validate(url, _multi_dict(params), signature))
    except Exception:  # noqa: BLE001 - malformed input is an invalid signature, never a 500
        return False


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    """One validator per auth token (built once, not per webhook request)."""
    return RequestValidator(auth_token)


class _MultiDict(dict[str, list[str]]):
    """Repeated form fields, in the shape RequestValidator reads (`getall`)."""

    def getall(self, key: str) -> list[str]:
        return self[key]


def _multi_dict(params: Mapping[str, str] | list[tuple[str, str]]) -> _MultiDict:
    items = params.items() if isinstance(params, Mapping) else params
    out = _MultiDict()
    for key, value in items:
        out.setdefault(key, []).append(value)
    return out


def compute_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The signature Twilio would send (tests, benchmarks, the local simulator)."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))
