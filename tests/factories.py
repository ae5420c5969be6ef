"""Test factories that speak the domain, built on the real enrolment service.

    episode = make_episode(app, discharged_on=date(2026, 5, 20), pattern="anchored")
    episode.checkins          # planned 6- and 12-month check-ins, as `tracker import` makes them
    episode.patient.phone     # (not stored) -> use `episode_phone(episode)` for the E.164 number

`make_episode` takes an `App` (commits its own transaction) or a `Session` (adds to the
caller's transaction; then crypto/window/now default to the test key, the default send window
and the conftest clock's start, unless given). Every call gets a fresh episode_ref, patient_ref
and a distinct valid UK mobile number unless you pass them.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tracker.app import App
from tracker.config import load_settings
from tracker.db.tables import Episode
from tracker.importing import EpisodeRow
from tracker.phone import normalise_mobile
from tracker.privacy import Crypto, decode_key
from tracker.schedule import SendWindow
from tracker.services.enrolment import Enroller

from .conftest import START, TEST_KEY

_counter = itertools.count(1)
AUTO: Any = object()


def unique_mobile(n: int | None = None) -> str:
    """A distinct valid UK mobile number in national format, e.g. '07400 100001'."""
    n = next(_counter) if n is None else n
    return f"07400 {100000 + n % 900000:06d}"


def make_episode(
    session_or_app: App | Session,
    *,
    discharged_on: date = date(2026, 5, 20),
    referred_on: date | None = None,
    pattern: str | None = "anchored",
    phone: str | None = AUTO,
    site: str = "North",
    episode_ref: str | None = None,
    patient_ref: str | None = None,
    consent_sms: bool = True,
    sessions: int = 6,
    connected_external: bool = True,
    birth_year: int | None = 1960,
    gender: str | None = "female",
    imd_quintile: int | None = 3,
    baseline: dict[str, int] | None = None,
    now: datetime | None = None,
    crypto: Crypto | None = None,
    window: SendWindow | None = None,
    waves: list[int] | None = None,
    response_days: int | None = None,
) -> Episode:
    """Enrol one discharged episode (with its check-ins planned) and return it.

    `pattern=None` lets the versioned rule derive it from `sessions` and `connected_external`;
    `baseline={"life_satisfaction": 6, ...}` fills the baseline_* columns.
    """
    n = next(_counter)
    row = EpisodeRow(
        episode_ref=episode_ref or f"EP{n:06d}",
        patient_ref=patient_ref or f"PT{n:06d}",
        phone=normalise_mobile(unique_mobile(n) if phone is AUTO else phone) if phone else None,
        birth_year=birth_year,
        gender=gender,
        imd_quintile=imd_quintile,
        site=site,
        referral_date=referred_on or discharged_on - timedelta(days=90),
        discharge_date=discharged_on,
        sessions=sessions,
        connected_external=connected_external,
        pattern=pattern,
        consent_sms=consent_sms,
        **{f"baseline_{k}": v for k, v in (baseline or {}).items()},
    )
    if isinstance(session_or_app, App):
        app = session_or_app
        with app.sessions() as session, session.begin():
            _enroller(
                session,
                now=now or app.clock.now(),
                crypto=crypto or app.crypto,
                window=window or app.window,
                waves=waves or app.settings.waves_months,
                response_days=response_days or app.settings.response_window_days,
            ).enrol([row])
        with app.sessions() as session:
            return _load(session, row.episode_ref)
    session = session_or_app
    defaults = load_settings({})
    _enroller(
        session,
        now=now or START,
        crypto=crypto or Crypto(decode_key(TEST_KEY)),
        window=window or SendWindow.from_settings(defaults),
        waves=waves or defaults.waves_months,
        response_days=response_days or defaults.response_window_days,
    ).enrol([row])
    return _load(session, row.episode_ref)


def _enroller(session: Session, **kwargs: Any) -> Enroller:
    return Enroller(session, actor="test", **kwargs)


def _load(session: Session, episode_ref: str) -> Episode:
    episode = session.scalars(
        select(Episode)
        .where(Episode.episode_ref == episode_ref)
        .options(selectinload(Episode.checkins), selectinload(Episode.patient))
    ).one()
    episode.checkins.sort(key=lambda c: c.wave)
    return episode


def episode_phone(app: App, episode: Episode) -> str:
    """The patient's E.164 number (decrypted), e.g. to simulate an inbound reply."""
    assert episode.patient.phone_ciphertext is not None, "patient has no phone number"
    return app.crypto.decrypt_phone(episode.patient.phone_ciphertext)
