"""Sign-in, sessions, CSRF, login throttling and role checks for the dashboard and the API.

- Sessions: a signed cookie (Starlette's SessionMiddleware, itsdangerous) holding only the user
  id, the sign-in time and the CSRF token; the account is re-read on every request, so disabling
  it takes effect at once. Cookie flags: HttpOnly, SameSite=Lax, Secure unless
  TRACKER_COOKIE_SECURE=false (plain-HTTP development only). Sessions last 8 hours.
- CSRF: a random token bound to the session; every form posts it back as `csrf_token` and it is
  compared in constant time. The JSON API uses bearer tokens, never cookies, so it needs none.
- Throttling: after 5 failed sign-ins for an account or from one client address, that account or
  address is locked for 30 s, doubling with each further failure, at most 1 hour.
- Roles: `require_roles(...)` is a FastAPI dependency; pages redirect to /login when signed out
  and answer 403 when the role may not see the page.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlparse

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracker.app import App
from tracker.db.tables import ApiToken, User
from tracker.services import audit, users
from tracker.services.users import Role
from tracker.web.pages import STATIC_DIR, render

log = logging.getLogger(__name__)

SESSION_COOKIE = "tracker_session"
SESSION_SECONDS = 8 * 3600
FREE_ATTEMPTS = 5
LOCK_BASE_SECONDS = 30
LOCK_MAX_SECONDS = 3600

router = APIRouter(include_in_schema=False)


# --- who is asking ----------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """A signed-in user or an API token: what they may see and how the audit names them."""

    kind: str  # user | token
    id: int
    name: str  # email, or the token's name
    role: Role
    site: str | None

    @property
    def actor(self) -> str:
        return self.name if self.kind == "user" else f"token:{self.name}"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def sees_identifiable(self) -> bool:
        return self.role in (Role.ADMIN, Role.STAFF)

    @property
    def site_scope(self) -> str | None:
        """The one site this principal is limited to, or None for every site (admins, researchers)."""
        return self.site if self.role is Role.STAFF else None

    def may_see_site(self, site: str | None) -> bool:
        scope = self.site_scope
        return scope is None or site == scope


def tracker_app(request: Request) -> App:
    return request.app.state.tracker  # type: ignore[no-any-return]


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str = "Your role does not allow this page.") -> None:
        super().__init__(message)
        self.message = message


_UNSET = object()


def principal_from_request(request: Request) -> Principal | None:
    """The signed-in user for this request (cached on request.state), or None."""
    cached = getattr(request.state, "principal", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[no-any-return]
    principal: Principal | None = None
    if "session" in request.scope:
        uid = request.session.get("uid")
        if isinstance(uid, int):
            app = tracker_app(request)
            with app.sessions() as session:
                user = session.get(User, uid)
                if user is not None and not user.disabled:
                    principal = Principal("user", user.id, user.email, Role(user.role), user.site)
            if principal is None:
                request.session.clear()
    request.state.principal = principal
    return principal


def require_roles(*roles: Role) -> Any:
    """Dependency for pages: redirect to sign-in when signed out, 403 when the role is wrong."""
    allowed = set(roles) or set(Role)

    def dependency(request: Request) -> Principal:
        principal = principal_from_request(request)
        if principal is None:
            raise LoginRequired()
        if principal.role not in allowed:
            raise Forbidden()
        return principal

    return Depends(dependency)


def require_token(*roles: Role) -> Any:
    """Dependency for the JSON API: a bearer token with one of `roles`."""
    allowed = set(roles) or set(Role)

    def dependency(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiAuthError(401, "send an API token as 'Authorization: Bearer <token>'")
        app = tracker_app(request)
        with app.sessions() as session:
            token: ApiToken | None = users.find_token(session, secret.strip())
            if token is None:
                raise ApiAuthError(401, "the API token is unknown or revoked")
            token.last_used_at = app.clock.now()
            principal = Principal("token", token.id, token.name, Role(token.role), token.site)
            session.commit()
        if principal.role not in allowed:
            raise ApiAuthError(403, f"a {principal.role} token may not use this endpoint")
        request.state.principal = principal
        return principal

    return Depends(dependency)


class ApiAuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- CSRF -------------------------------------------------------------------------------


def csrf_token(request: Request) -> str | None:
    if "session" not in request.scope:
        return None
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Dependency for every form POST: the posted token must match the session's."""
    form = await request.form()
    sent = form.get("csrf_token")
    expected = request.session.get("csrf") if "session" in request.scope else None
    if (
        not isinstance(sent, str)
        or not isinstance(expected, str)
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise CsrfError()


class CsrfError(Exception):
    pass


CSRF = Depends(check_csrf)


# --- throttling -------------------------------------------------------------------------


def lock_seconds(failures: int) -> int:
    """0 while under the free attempts, then 30 s doubling per failure, capped at an hour."""
    if failures < FREE_ATTEMPTS:
        return 0
    return min(LOCK_BASE_SECONDS * 2 ** (failures - FREE_ATTEMPTS), LOCK_MAX_SECONDS)


@dataclass
class AddressThrottle:
    """Failed sign-ins per client address, in this process (one web process per deployment)."""

    failures: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)

    def locked_until(self, address: str, now: datetime) -> datetime | None:
        _, until = self.failures.get(address, (0, None))
        return until if until is not None and until > now else None

    def fail(self, address: str, now: datetime) -> None:
        count, _ = self.failures.get(address, (0, None))
        count += 1
        wait = lock_seconds(count)
        self.failures[address] = (count, now + timedelta(seconds=wait) if wait else None)
        if len(self.failures) > 100_000:  # bounded memory under a spray of addresses
            self.failures.pop(next(iter(self.failures)))

    def succeed(self, address: str) -> None:
        self.failures.pop(address, None)


def _throttle(request: Request) -> AddressThrottle:
    return request.app.state.login_throttle  # type: ignore[no-any-return]


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _address_ref(address: str) -> str:
    # The audit keeps a short hash, not the address itself.
    return hashlib.sha256(address.encode()).hexdigest()[:12]


def _wait_text(until: datetime, now: datetime) -> str:
    seconds = max(int((until - now).total_seconds()) + 1, 1)
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{(seconds + 59) // 60} minutes"


# --- pages ------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login page cannot be used as an open redirect."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    if principal_from_request(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse, dependencies=[CSRF])
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
) -> Response:
    app = tracker_app(request)
    now = app.clock.now()
    address = _client_address(request)
    throttle = _throttle(request)
    target = _safe_next(next)

    def refuse(message: str, status: int) -> Response:
        return render(
            request, "login.html", {"next": target, "error": message, "email": email}, status
        )

    address_lock = throttle.locked_until(address, now)
    if address_lock is not None:
        return refuse(
            "Too many failed sign-ins from this computer. "
            f"Try again in {_wait_text(address_lock, now)}.",
            429,
        )
    with app.sessions() as session:
        user = users.find_user(session, email) if email.strip() else None
        if user is not None and user.locked_until is not None and user.locked_until > now:
            wait = _wait_text(user.locked_until, now)
            return refuse(
                f"This account is locked after too many failed sign-ins. Try again in {wait},"
                " or ask an administrator.",
                429,
            )
        ok = users.verify_password(user, password) and user is not None and not user.disabled
        if not ok:
            throttle.fail(address, now)
            if user is not None:
                user.failed_logins = (user.failed_logins or 0) + 1
                wait = lock_seconds(user.failed_logins)
                user.locked_until = now + timedelta(seconds=wait) if wait else None
            audit.record(
                session,
                at=now,
                actor=user.email if user is not None else "anonymous",
                action="login.failed",
                entity="user",
                entity_ref=str(user.id) if user is not None else None,
                detail={"client": _address_ref(address)},
            )
            session.commit()
            return refuse(
                "That email and password do not match an active account. Check both and try"
                " again; after 5 failures sign-in pauses for a while.",
                401,
            )
        assert user is not None
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        audit.record(
            session,
            at=now,
            actor=user.email,
            action="login",
            entity="user",
            entity_ref=str(user.id),
        )
        session.commit()
        uid = user.id
    throttle.succeed(address)
    # A fresh session (new CSRF token) on every sign-in: nothing carries over from before.
    request.session.clear()
    request.session["uid"] = uid
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse(target, status_code=303)


@router.post("/logout", dependencies=[CSRF])
def logout(request: Request) -> Response:
    principal = principal_from_request(request)
    if principal is not None:
        app = tracker_app(request)
        with app.sessions() as session:
            audit.record(
                session,
                at=app.clock.now(),
                actor=principal.actor,
                action="logout",
                entity="user",
                entity_ref=str(principal.id),
            )
            session.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# --- wiring -----------------------------------------------------------------------------


def session_secret(app: App) -> str:
    """TRACKER_SESSION_SECRET, or a sub-key of the secret key (stable across restarts)."""
    if app.settings.session_secret is not None:
        return app.settings.session_secret.get_secret_value()
    return hmac.new(app.crypto.master, b"tracker/session-cookie/v1", hashlib.sha256).hexdigest()


_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


def install(web: FastAPI, app: App) -> None:
    web.state.login_throttle = AddressThrottle()
    web.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(app),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_SECONDS,
        same_site="lax",
        https_only=app.settings.cookie_secure,
    )

    web.add_middleware(SecurityHeaders)

    @web.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @web.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", {"title": "Not allowed", "message": exc.message}, 403)

    @web.exception_handler(CsrfError)
    async def _csrf(request: Request, exc: CsrfError) -> Response:
        return render(
            request,
            "error.html",
            {
                "title": "Form expired",
                "message": "This form was out of date or not sent from this site. "
                "Go back, reload the page and try again.",
            },
            403,
        )

    @web.exception_handler(ApiAuthError)
    async def _api_auth(request: Request, exc: ApiAuthError) -> Response:
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    web.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    web.include_router(router)


class SecurityHeaders:
    """Adds the security headers to every response.

    Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware wraps each
    request in extra tasks and streams, which cost more than the SMS webhook itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if path.startswith("/api/docs") and "content-security-policy" in headers:
                    del headers["content-security-policy"]  # Swagger UI loads from a CDN
                if not path.startswith("/static/") and "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
