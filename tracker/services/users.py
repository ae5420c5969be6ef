"""Dashboard accounts and API tokens.

Passwords are hashed with argon2id (argon2-cffi). API tokens are random secrets shown once;
only their SHA-256 is stored, so a database leak does not hand out working tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.db.tables import ApiToken, User
from tracker.domain import DomainError
from tracker.services import audit

TOKEN_PREFIX = "trk_"
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash to verify against when the account does not exist, so unknown and known emails
    take as long (made on first use: hashing at import would slow every CLI command)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not a real password, only for timing")
    return _dummy_hash


class Role(StrEnum):
    ADMIN = "admin"  # everything
    STAFF = "staff"  # identifiable data for their site, alerts, import
    RESEARCHER = "researcher"  # pseudonymised exports and aggregate reports only


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise DomainError(
            f"unknown role {value!r} (use one of: {', '.join(r.value for r in Role)})"
        ) from None


def _check_site(role: Role, site: str | None) -> str | None:
    site = (site or "").strip() or None
    if role is Role.STAFF and site is None:
        raise DomainError(
            "staff accounts see identifiable data for one site only: give --site SITE "
            "(use --role admin for someone who works across sites)"
        )
    return site


def normalise_email(email: str) -> str:
    text = (email or "").strip().lower()
    if "@" not in text or text.startswith("@") or text.endswith("@") or " " in text:
        raise DomainError(f"{email!r} is not an email address (e.g. jo.bloggs@example.nhs.uk)")
    return text


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(a few unrelated words work well)"
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """True if `password` matches; always does the same amount of work."""
    stored = user.password_hash if user is not None and user.password_hash else _dummy()
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    return ok and user is not None and bool(user.password_hash)


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.strip().lower())).first()


def add_user(
    session: Session,
    *,
    email: str,
    role: str,
    password: str,
    site: str | None = None,
    now: datetime,
    actor: str,
) -> User:
    """Create an account (caller commits). Raises DomainError for duplicates and weak input."""
    email = normalise_email(email)
    parsed = parse_role(role)
    site = _check_site(parsed, site)
    check_password_strength(password)
    if find_user(session, email) is not None:
        raise DomainError(f"an account for {email} already exists (disable it or pick another)")
    user = User(
        email=email,
        password_hash=hash_password(password),
        role=parsed.value,
        site=site,
        disabled=False,
        failed_logins=0,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="user.add",
        entity="user",
        entity_ref=str(user.id),
        detail={"role": parsed.value, "site": site},
    )
    return user


def disable_user(session: Session, email: str, *, now: datetime, actor: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise DomainError(f"no account for {email.strip().lower()} (see `tracker user list`)")
    user.disabled = True
    # Tokens tied to the account stop working with it.
    for token in session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = now
    audit.record(
        session, at=now, actor=actor, action="user.disable", entity="user", entity_ref=str(user.id)
    )
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


# --- API tokens -------------------------------------------------------------------------


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def create_token(
    session: Session,
    *,
    name: str,
    role: str,
    site: str | None = None,
    user_email: str | None = None,
    now: datetime,
    actor: str,
) -> NewToken:
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise DomainError("a token needs a name of 1-128 characters (e.g. 'emis-nightly-import')")
    parsed = parse_role(role)
    site = _check_site(parsed, site)
    user_id = None
    if user_email:
        user = find_user(session, user_email)
        if user is None or user.disabled:
            raise DomainError(f"no active account for {user_email} to tie the token to")
        user_id = user.id
    if session.scalars(
        select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    ).first():
        raise DomainError(f"an active token named {name!r} exists (revoke it or pick another)")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id,
        name=name,
        token_hash=hash_token(secret),
        role=parsed.value,
        site=site,
        created_at=now,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="token.create",
        entity="api_token",
        entity_ref=str(token.id),
        detail={"name": name, "role": parsed.value, "site": site},
    )
    return NewToken(token=token, secret=secret)


def revoke_token(session: Session, id_or_name: str, *, now: datetime, actor: str) -> ApiToken:
    query = select(ApiToken).where(ApiToken.revoked_at.is_(None))
    if id_or_name.isdigit():
        query = query.where(ApiToken.id == int(id_or_name))
    else:
        query = query.where(ApiToken.name == id_or_name)
    token = session.scalars(query).first()
    if token is None:
        raise DomainError(f"no active token {id_or_name!r} (see `tracker token list`)")
    token.revoked_at = now
    audit.record(
        session,
        at=now,
        actor=actor,
        action="token.revoke",
        entity="api_token",
        entity_ref=str(token.id),
    )
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def find_token(session: Session, secret: str) -> ApiToken | None:
    """The active token with this secret, or None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == hash_token(secret))
    ).first()
    if token is None or token.revoked_at is not None:
        return None
    if token.user_id is not None:
        user = session.get(User, token.user_id)
        if user is None or user.disabled:
            return None
    return token
