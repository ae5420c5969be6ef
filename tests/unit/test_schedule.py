"""Schedule rules: calendar months with clipping, the send window, DST days, late enrolment."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tracker.config import load_settings
from tracker.domain import CheckInState
from tracker.schedule import (
    SendWindow,
    local_instant,
    nominal_due,
    plan_checkin,
    plan_checkins,
    reminder_at,
    resend_slot,
    target_date,
)

LONDON = ZoneInfo("Europe/London")
WEEKDAYS = SendWindow(LONDON, frozenset(range(5)), time(8), time(18))
EVERY_DAY = SendWindow(LONDON, frozenset(range(7)), time(8), time(18))
EARLY = datetime(2026, 1, 1, tzinfo=UTC)  # "now" long before every due date below


def local(instant: datetime) -> datetime:
    return instant.astimezone(LONDON)


@pytest.mark.parametrize(
    ("discharge", "months", "expected"),
    [
        (date(2026, 8, 31), 6, date(2027, 2, 28)),  # clipped to the end of February
        (date(2027, 8, 31), 6, date(2028, 2, 29)),  # leap year: 29 February
        (date(2026, 8, 31), 12, date(2027, 8, 31)),
        (date(2024, 2, 29), 6, date(2024, 8, 29)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),  # 29 Feb discharge, no 29 Feb next year
        (date(2026, 3, 31), 6, date(2026, 9, 30)),
        (date(2026, 12, 15), 6, date(2027, 6, 15)),
    ],
)
def test_due_date_is_calendar_months_with_month_end_clipping(
    discharge: date, months: int, expected: date
) -> None:
    assert target_date(discharge, months) == expected


def test_31_august_discharge_goes_out_monday_1_march_at_8() -> None:
    # 28 Feb 2027 is a Sunday: the text moves to the next weekday morning.
    plan = plan_checkin(
        discharge=date(2026, 8, 31), wave=6, window=WEEKDAYS, response_days=28, now=EARLY
    )
    assert plan.target_date == date(2027, 2, 28)
    assert local(plan.due_at) == datetime(2027, 3, 1, 8, 0, tzinfo=LONDON)
    assert plan.due_at.isoformat() == "2027-03-01T08:00:00+00:00"
    assert plan.window_closes_at == plan.due_at + timedelta(days=28)
    assert plan.state == CheckInState.SCHEDULED


def test_summer_due_times_are_8_local_which_is_7_utc() -> None:
    plan = plan_checkin(
        discharge=date(2026, 8, 31), wave=12, window=WEEKDAYS, response_days=28, now=EARLY
    )
    assert local(plan.due_at).isoformat() == "2027-08-31T08:00:00+01:00"
    assert plan.due_at.hour == 7


def test_weekend_target_moves_to_monday_morning() -> None:
    saturday = date(2027, 3, 6)
    due = nominal_due(saturday, WEEKDAYS)
    assert local(due) == datetime(2027, 3, 8, 8, 0, tzinfo=LONDON)


def test_evening_moves_to_next_morning_and_friday_evening_to_monday() -> None:
    tuesday_evening = datetime(2027, 3, 2, 18, 30, tzinfo=LONDON)
    assert local(WEEKDAYS.next_slot(tuesday_evening)) == datetime(2027, 3, 3, 8, 0, tzinfo=LONDON)
    friday_evening = datetime(2027, 3, 5, 18, 0, tzinfo=LONDON)  # end is exclusive
    assert local(WEEKDAYS.next_slot(friday_evening)) == datetime(2027, 3, 8, 8, 0, tzinfo=LONDON)
    early_morning = datetime(2027, 3, 3, 6, 15, tzinfo=LONDON)
    assert local(WEEKDAYS.next_slot(early_morning)) == datetime(2027, 3, 3, 8, 0, tzinfo=LONDON)
    inside = datetime(2027, 3, 3, 12, 34, tzinfo=LONDON)
    assert WEEKDAYS.next_slot(inside) == inside


def test_window_is_configurable_saturday_included() -> None:
    settings = load_settings({"TRACKER_SEND_DAYS": "mon-sat", "TRACKER_SEND_START": "09:30"})
    window = SendWindow.from_settings(settings)
    saturday = date(2027, 3, 6)
    assert local(nominal_due(saturday, window)) == datetime(2027, 3, 6, 9, 30, tzinfo=LONDON)
    sunday = date(2027, 3, 7)
    assert local(nominal_due(sunday, window)) == datetime(2027, 3, 8, 9, 30, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("discharge", "wave", "day", "offset"),
    [
        (date(2026, 9, 28), 6, date(2027, 3, 28), "+01:00"),  # clocks go forward at 01:00 GMT
        (date(2026, 10, 31), 12, date(2027, 10, 31), "+00:00"),  # clocks go back at 02:00 BST
    ],
)
def test_both_dst_days_send_at_8_local(discharge: date, wave: int, day: date, offset: str) -> None:
    plan = plan_checkin(
        discharge=discharge, wave=wave, window=EVERY_DAY, response_days=28, now=EARLY
    )
    assert plan.target_date == day
    assert local(plan.due_at).isoformat() == f"{day.isoformat()}T08:00:00{offset}"


@pytest.mark.parametrize("day", [date(2027, 3, 28), date(2027, 10, 31)])
def test_dst_days_neither_skip_nor_double_a_send(day: date) -> None:
    """Every wall-clock minute of a DST day maps to one instant, never one inside the gap,
    and distinct wall times never collapse onto the same send (nor repeat in the fold)."""
    instants = []
    for minute in range(0, 24 * 60, 5):
        wall = time(minute // 60, minute % 60)
        instant = local_instant(day, wall, LONDON)
        shown = local(instant)
        assert shown.date() == day
        # Either the wall time itself, or (inside the spring gap) the first instant after it.
        assert shown.time() == wall or (day.month == 3 and time(1) <= wall < time(2))
        if day.month == 3 and time(1) <= wall < time(2):
            assert shown.time() == time(2, 0)  # 02:00 BST, the end of the gap
        instants.append(instant)
    assert instants == sorted(instants)
    # Autumn: 01:00-01:59 happens twice; a wall time gets its first occurrence only.
    if day.month == 10:
        first = local_instant(day, time(1, 30), LONDON)
        assert first.isoformat() == "2027-10-31T00:30:00+00:00"
        assert local(first).utcoffset() == timedelta(hours=1)


def test_a_window_opening_inside_the_spring_gap_sends_once_after_it() -> None:
    window = SendWindow(LONDON, frozenset(range(7)), time(1, 30), time(3))
    due = nominal_due(date(2027, 3, 28), window)
    assert local(due).isoformat() == "2027-03-28T02:00:00+01:00"
    assert window.contains(due)
    # The day before and after: the usual 01:30.
    assert local(nominal_due(date(2027, 3, 29), window)).time() == time(1, 30)


def test_a_window_inside_the_autumn_fold_sends_in_the_first_pass() -> None:
    window = SendWindow(LONDON, frozenset(range(7)), time(1, 0), time(1, 45))
    due = nominal_due(date(2027, 10, 31), window)
    assert due.isoformat() == "2027-10-31T00:00:00+00:00"  # 01:00 BST, the first 01:00
    # Exactly one daily slot: the next opening after this one is the following day.
    later = window.next_slot(datetime(2027, 10, 31, 1, 0, tzinfo=UTC) + timedelta(minutes=45))
    assert local(later).date() == date(2027, 11, 1)


def test_late_enrolment_inside_the_window_sends_at_the_next_slot() -> None:
    discharge = date(2026, 5, 20)  # 6-month due: Fri 20 Nov 2026 08:00
    now = datetime(2026, 11, 26, 19, 0, tzinfo=UTC)  # Thursday evening, 6 days late
    plan = plan_checkin(discharge=discharge, wave=6, window=WEEKDAYS, response_days=28, now=now)
    assert plan.state == CheckInState.SCHEDULED
    assert local(plan.due_at) == datetime(2026, 11, 27, 8, 0, tzinfo=LONDON)
    # The response window still counts from the nominal due time, not from the late send.
    assert plan.window_closes_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC) + timedelta(days=28)


def test_late_enrolment_after_the_window_is_missed_with_a_reason() -> None:
    discharge = date(2026, 4, 1)  # 6-month due Thu 1 Oct 2026; window closed 29 Oct
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    plans = plan_checkins(
        discharge=discharge, waves=[6, 12], window=WEEKDAYS, response_days=28, now=now
    )
    assert [p.state for p in plans] == [CheckInState.MISSED, CheckInState.SCHEDULED]
    assert plans[0].reason == ("enrolled after the 6-month response window closed on 2026-10-29")
    assert plans[1].reason is None


def test_late_enrolment_when_no_slot_is_left_before_the_window_closes() -> None:
    # Window closes on a Saturday; "now" is the Friday evening before: no slot remains.
    discharge = date(2026, 5, 4)  # due Wed 4 Nov 2026 08:00 GMT; closes Sat 7 Nov with 3 days
    now = datetime(2026, 11, 6, 18, 30, tzinfo=UTC)
    plan = plan_checkin(discharge=discharge, wave=6, window=WEEKDAYS, response_days=3, now=now)
    assert plan.state == CheckInState.MISSED


def test_no_consent_records_every_wave_as_missed() -> None:
    plans = plan_checkins(
        discharge=date(2026, 8, 31),
        waves=[6, 12],
        window=WEEKDAYS,
        response_days=28,
        now=EARLY,
        consent=False,
    )
    assert [(p.state, p.reason) for p in plans] == [
        (CheckInState.MISSED, "no consent to texts"),
        (CheckInState.MISSED, "no consent to texts"),
    ]


def test_reminders_stay_inside_send_hours_and_the_response_window() -> None:
    sent = datetime(2027, 3, 5, 16, 0, tzinfo=UTC)  # Friday 16:00 GMT
    closes = sent + timedelta(days=28)
    first = reminder_at(
        first_sent_at=sent,
        reminders_sent=0,
        reminder_days=[3, 7],
        max_reminders=2,
        window=WEEKDAYS,
        window_closes_at=closes,
    )
    assert first is not None and local(first) == datetime(2027, 3, 8, 16, 0, tzinfo=LONDON)
    assert (
        reminder_at(
            first_sent_at=sent,
            reminders_sent=2,
            reminder_days=[3, 7],
            max_reminders=2,
            window=WEEKDAYS,
            window_closes_at=closes,
        )
        is None
    )
    assert (
        reminder_at(
            first_sent_at=sent,
            reminders_sent=1,
            reminder_days=[3, 7],
            max_reminders=2,
            window=WEEKDAYS,
            window_closes_at=sent + timedelta(days=5),
        )
        is None
    )
    assert resend_slot(now=closes, window=WEEKDAYS, window_closes_at=closes) is None


def test_a_window_that_never_opens_is_an_error() -> None:
    window = SendWindow(LONDON, frozenset(), time(8), time(18))
    with pytest.raises(ValueError, match="TRACKER_SEND_DAYS"):
        window.next_slot(EARLY)
