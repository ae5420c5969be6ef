"""A local Twilio-compatible HTTP server for contract tests (127.0.0.1, port from the OS).

Speaks just enough of the Messages API for the real `twilio` client:

    POST /2010-04-01/Accounts/{sid}/Messages.json   create (form fields To, Body, From, ...)
    GET  /2010-04-01/Accounts/{sid}/Messages.json   list (To=, DateSent>=)

Each create consumes the next scripted behaviour (default: success):
`Ok()`, `Fail(status, code, retry_after=None)`, `Hang(seconds)` (accept, then answer too late:
the client times out after the text was "created"), `Drop()` (read the request, then close the
connection without a word). Every request is recorded for assertions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit


@dataclass(frozen=True)
class Ok:
    status: str = "queued"


@dataclass(frozen=True)
class Fail:
    http_status: int
    code: int | None = None
    retry_after: str | None = None


@dataclass(frozen=True)
class Hang:
    seconds: float


@dataclass(frozen=True)
class Drop:
    pass


Behaviour = Ok | Fail | Hang | Drop


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, str]
    authorization: str | None


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    script: deque[Behaviour] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    messages: list[dict[str, object]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def then(self, *behaviours: Behaviour) -> FakeTwilio:
        self.script.extend(behaviours)
        return self

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            return self.script.popleft() if self.script else Ok()

    def create(self, form: dict[str, str], status: str) -> dict[str, object]:
        now = datetime.now(UTC)
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": self.account_sid,
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"),
            "status": status,
            "status_callback": form.get("StatusCallback"),
            "num_segments": "1",
            "direction": "outbound-api",
            "date_created": format_datetime(now),
            "date_sent": format_datetime(now),
            "date_updated": format_datetime(now),
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/x.json",
        }
        with self.lock:
            self.messages.append(message)
        return message

    def start(self) -> FakeTwilio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _record(self) -> Recorded:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                rec = Recorded(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    dict(parse_qsl(raw, keep_blank_values=True)),
                    self.headers.get("Authorization"),
                )
                with fake.lock:
                    fake.requests.append(rec)
                return rec

            def _json(self, status: int, payload: object, headers: dict[str, str] | None = None):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                rec = self._record()
                if not rec.path.endswith("/Messages.json"):
                    self._json(404, {"code": 20404, "message": "not found", "status": 404})
                    return
                behaviour = fake.next_behaviour()
                if isinstance(behaviour, Drop):
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if isinstance(behaviour, Fail):
                    headers = (
                        {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
                    )
                    self._json(
                        behaviour.http_status,
                        {
                            "code": behaviour.code,
                            "message": f"scripted error {behaviour.code}",
                            "more_info": "",
                            "status": behaviour.http_status,
                        },
                        headers,
                    )
                    return
                status = behaviour.status if isinstance(behaviour, Ok) else "queued"
                message = fake.create(rec.form, status)
                if isinstance(behaviour, Hang):
                    time.sleep(behaviour.seconds)
                    self.close_connection = True
                    return
                self._json(201, message)

            def do_GET(self) -> None:  # noqa: N802
                rec = self._record()
                to = (rec.query.get("To") or [None])[0]
                with fake.lock:
                    found = [m for m in fake.messages if to is None or m["to"] == to]
                self._json(
                    200,
                    {
                        "messages": found,
                        "end": max(len(found) - 1, 0),
                        "first_page_uri": rec.path,
                        "next_page_uri": None,
                        "page": 0,
                        "page_size": 200,
                        "previous_page_uri": None,
                        "start": 0,
                        "uri": rec.path,
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
