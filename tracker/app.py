"""Composition root: settings -> engine, clock, crypto, SMS gateway. Tests rebuild it with fakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tracker.clock import Clock, SystemClock
from tracker.config import Settings, load_settings
from tracker.db.engine import make_engine, make_sessionmaker
from tracker.privacy import Crypto, load_crypto
from tracker.schedule import SendWindow

if TYPE_CHECKING:
    from tracker.sms.port import SmsGateway


@dataclass
class App:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    _gateway: SmsGateway | None = field(default=None, repr=False)
    _crypto: Crypto | None = field(default=None, repr=False)

    @property
    def crypto(self) -> Crypto:
        if self._crypto is None:
            self._crypto = load_crypto(self.settings)
        return self._crypto

    @property
    def gateway(self) -> SmsGateway:
        if self._gateway is None:
            self._gateway = _build_gateway(self)
        return self._gateway

    @cached_property
    def window(self) -> SendWindow:
        return SendWindow.from_settings(self.settings)

    def now(self):  # type: ignore[no-untyped-def]
        return self.clock.now()

    def close(self) -> None:
        self.engine.dispose()


def build(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    gateway: SmsGateway | None = None,
    crypto: Crypto | None = None,
    engine: Engine | None = None,
) -> App:
    settings = settings or load_settings()
    engine = engine or make_engine(settings.database_url)
    return App(
        settings=settings,
        clock=clock or SystemClock(),
        engine=engine,
        sessions=make_sessionmaker(engine),
        _gateway=gateway,
        _crypto=crypto,
    )


def _build_gateway(app: App) -> SmsGateway:
    if app.settings.sms_backend == "twilio":
        from tracker.sms.twilio import TwilioGateway

        return TwilioGateway(app.settings)
    from tracker.sms.simulator import SimulatorGateway

    return SimulatorGateway(app)
