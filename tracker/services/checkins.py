"""Listing check-ins: what will go out (or went out) when, for the CLI, the API and reports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.db.tables import CheckIn, Episode


@dataclass(frozen=True)
class CheckInListing:
    episode_ref: str
    site: str
    wave: int
    target_date: date
    due_at: datetime  # aware UTC
    window_closes_at: datetime
    state: str
    reason: str | None

    def as_json(self, zone: ZoneInfo) -> dict[str, object]:
        """The `tracker checkins --json` line: due_at in the service's zone, with its offset."""
        return {
            "episode_ref": self.episode_ref,
            "wave": self.wave,
            "due_at": self.due_at.astimezone(zone).isoformat(),
            "state": self.state,
        }


def list_checkins(
    session: Session,
    *,
    states: list[str] | None = None,
    site: str | None = None,
    episode_ref: str | None = None,
    batch: int = 2000,
) -> Iterator[CheckInListing]:
    """Check-ins ordered by due time, streamed in batches (safe on large databases)."""
    query = (
        select(
            Episode.episode_ref,
            Episode.site,
            CheckIn.wave,
            CheckIn.target_date,
            CheckIn.due_at,
            CheckIn.window_closes_at,
            CheckIn.state,
            CheckIn.reason,
        )
        .join(Episode, Episode.id == CheckIn.episode_id)
        .order_by(CheckIn.due_at, Episode.episode_ref, CheckIn.wave)
    )
    if states:
        query = query.where(CheckIn.state.in_(states))
    if site is not None:
        query = query.where(Episode.site == site)
    if episode_ref is not None:
        query = query.where(Episode.episode_ref == episode_ref)
    for row in session.execute(query.execution_options(yield_per=batch)):
        yield CheckInListing(*row)
