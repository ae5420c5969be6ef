"""Pure scheduling rules: when each wave is due, the polite send window, reminders.

Instants are aware UTC datetimes; calendar arithmetic happens in the service's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from tracker.domain import CheckInState


@dataclass(frozen=True)
class SendWindow:
    """Local weekdays and hours in which texts may go out (end exclusive)."""

    zone: ZoneInfo
    weekdays: frozenset[int]
    start: time
    end: time

    @classmethod
    def from_settings(cls, settings) -> SendWindow:  # type: ignore[no-untyped-def]
        return cls(settings.zone, settings.weekdays, settings.send_start, settings.send_end)

    def contains(self, instant: datetime) -> bool:
        local = instant.astimezone(self.zone)
        return local.weekday() in self.weekdays and self.start <= local.time() < self.end

    def next_slot(self, after: datetime) -> datetime:
        """The first instant at or after `after` that lies inside the window (UTC)."""
        if self.contains(after):
            return after.astimezone(UTC)
        local_day = after.astimezone(self.zone).date()
        for offset in range(0, 15):
            day = local_day + timedelta(days=offset)
            if day.weekday() not in self.weekdays:
                continue
            opening = local_instant(day, self.start, self.zone)
            closing = local_instant(day, self.end, self.zone)
            candidate = max(opening, after.astimezone(UTC))
            if candidate < closing and self.contains(candidate):
                return candidate
        raise ValueError("the send window never opens; check TRACKER_SEND_DAYS")


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at wall-clock `at` in `zone`, as UTC.

    A wall time skipped by the spring-forward change is moved to the first instant after the gap;
    an ambiguous autumn wall time takes its first occurrence. So DST days neither skip nor
    double a send.
    """
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:
        # Non-existent local time (inside the gap): the gap ends at this same UTC instant's
        # later offset; take the first valid instant after the gap.
        later = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
        utc = min(utc, later)
        while utc.astimezone(zone).replace(tzinfo=None) < naive:
            utc += timedelta(minutes=1)
    return utc


def target_date(discharge: date, months: int) -> date:
    """Discharge + N calendar months, clipped to month end (31 Aug + 6 = 28/29 Feb)."""
    return discharge + relativedelta(months=months)


@dataclass(frozen=True)
class PlannedCheckIn:
    wave: int
    target_date: date
    due_at: datetime  # first allowed send slot (UTC)
    window_closes_at: datetime
    state: CheckInState
    reason: str | None = None


def nominal_due(target: date, window: SendWindow) -> datetime:
    """The first send slot on or after the target date's window opening."""
    return window.next_slot(local_instant(target, window.start, window.zone))


def plan_checkin(
    *,
    discharge: date,
    wave: int,
    window: SendWindow,
    response_days: int,
    now: datetime,
    consent: bool = True,
) -> PlannedCheckIn:
    """When wave `wave` goes out for a patient discharged on `discharge`, seen at `now`.

    Late enrolment: past due but the response window still open -> next slot from now;
    window already closed (or no slot left in it) -> missed, with the reason.
    """
    target = target_date(discharge, wave)
    due = nominal_due(target, window)
    closes = due + timedelta(days=response_days)
    if not consent:
        return PlannedCheckIn(wave, target, due, closes, CheckInState.MISSED, "no consent to texts")
    if due >= now:
        return PlannedCheckIn(wave, target, due, closes, CheckInState.SCHEDULED)
    late_slot = window.next_slot(now)
    if late_slot < closes:
        return PlannedCheckIn(wave, target, late_slot, closes, CheckInState.SCHEDULED)
    return PlannedCheckIn(
        wave,
        target,
        due,
        closes,
        CheckInState.MISSED,
        f"enrolled after the {wave}-month response window closed on "
        f"{closes.astimezone(window.zone).date().isoformat()}",
    )


def plan_checkins(
    *,
    discharge: date,
    waves: list[int],
    window: SendWindow,
    response_days: int,
    now: datetime,
    consent: bool = True,
) -> list[PlannedCheckIn]:
    return [
        plan_checkin(
            discharge=discharge,
            wave=w,
            window=window,
            response_days=response_days,
            now=now,
            consent=consent,
        )
        for w in waves
    ]


def reminder_at(
    *,
    first_sent_at: datetime,
    reminders_sent: int,
    reminder_days: list[int],
    max_reminders: int,
    window: SendWindow,
    window_closes_at: datetime,
) -> datetime | None:
    """When the next reminder may go out, or None when no more are allowed."""
    if reminders_sent >= min(max_reminders, len(reminder_days)):
        return None
    slot = window.next_slot(first_sent_at + timedelta(days=reminder_days[reminders_sent]))
    return slot if slot < window_closes_at else None


def resend_slot(
    *, now: datetime, window: SendWindow, window_closes_at: datetime
) -> datetime | None:
    """Next allowed slot for a (re)send from `now`, or None when the window has closed."""
    slot = window.next_slot(now)
    return slot if slot < window_closes_at else None
