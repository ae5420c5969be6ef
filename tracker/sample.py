"""Realistic sample import files: N discharged episodes, reproducible from a seed.

Used by the demo, the benchmark and tests. Numbers are valid UK mobile numbers (as
phonenumbers classifies them), written the ways people write them; dates are in the past
relative to `today`, in ISO or UK style; patterns recorded for most episodes, left to the
rule for the rest.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from tracker.importing import ALL_COLUMNS
from tracker.phone import PhoneError, normalise_mobile

SITES = ("North", "South", "East", "West", "Central")
GENDERS = ("female", "male", "female", "male", "other")


def _mobile(rng: random.Random) -> str:
    while True:
        national = "7" + rng.choice("12345789") + f"{rng.randrange(10**8):08d}"
        try:
            normalise_mobile("0" + national)
        except PhoneError:
            continue
        return national


def _written(rng: random.Random, national: str) -> str:
    """The same number as different people type it."""
    style = rng.random()
    if style < 0.6:
        return f"0{national[:4]} {national[4:]}"
    if style < 0.75:
        return f"+44 {national[:4]} {national[4:]}"
    if style < 0.85:
        return "44" + national
    if style < 0.95:
        return "0" + national
    return f"(0{national[:4]}) {national[4:7]}-{national[7:]}"


def _written_date(rng: random.Random, day: date) -> str:
    return day.strftime("%d/%m/%Y") if rng.random() < 0.4 else day.isoformat()


def sample_rows(
    n: int, *, seed: int = 0, today: date, months_back: int = 15
) -> Iterator[dict[str, str]]:
    """N episode rows (column -> text) discharged up to `months_back` months before `today`."""
    rng = random.Random(seed)
    previous: list[tuple[str, str, str, str, str]] = []  # patients who may come back
    for i in range(1, n + 1):
        if previous and rng.random() < 0.03:
            patient_ref, phone, birth_year, gender, imd = rng.choice(previous)
        else:
            patient_ref = f"P{seed:03d}-{i:07d}"
            phone = _written(rng, _mobile(rng))
            birth_year = str(rng.randint(today.year - 90, today.year - 18))
            gender = rng.choice(GENDERS)
            imd = str(rng.choices((1, 2, 3, 4, 5), weights=(30, 25, 20, 15, 10))[0])
            if rng.random() < 0.05:
                imd = ""
            previous.append((patient_ref, phone, birth_year, gender, imd))
            if len(previous) > 500:
                previous.pop(0)
        discharge = today - timedelta(days=rng.randint(1, months_back * 30))
        referral = discharge - timedelta(days=rng.randint(14, 200))
        connected = rng.random() < 0.7
        sessions = rng.choice((1, 2, 3, 3, 4, 5, 6, 6, 8, 10, 12))
        pattern = ""
        if rng.random() < 0.6:
            pattern = "with_only" if not connected else ("rapid" if sessions <= 3 else "anchored")
        baseline = rng.random() < 0.8
        yield {
            "episode_ref": f"E{seed:03d}-{i:07d}",
            "patient_ref": patient_ref,
            "phone": phone,
            "birth_year": birth_year,
            "gender": gender,
            "imd_quintile": imd,
            "site": rng.choice(SITES),
            "referral_date": _written_date(rng, referral),
            "discharge_date": _written_date(rng, discharge),
            "sessions": str(sessions),
            "connected_external": rng.choice(("yes", "Yes", "y", "TRUE", "1"))
            if connected
            else rng.choice(("no", "No", "n", "FALSE", "0")),
            "pattern": pattern,
            "consent_sms": "yes" if rng.random() < 0.93 else "no",
            "baseline_life_satisfaction": str(rng.randint(0, 10)) if baseline else "",
            "baseline_worthwhile": str(rng.randint(0, 10)) if baseline else "",
            "baseline_happy": str(rng.randint(0, 10)) if baseline else "",
            "baseline_anxious": str(rng.randint(0, 10)) if baseline else "",
            "baseline_lonely": str(rng.randint(1, 5)) if baseline else "",
            "baseline_gp_visits": str(min(int(rng.expovariate(1 / 4)), 40)) if baseline else "",
        }


def write_sample_csv(
    path: Path, n: int, *, seed: int = 0, today: date, months_back: int = 15
) -> Path:
    """Write N sample episodes to `path` (UTF-8, header row); streams, so any N fits."""
    path = Path(path)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ALL_COLUMNS))
        writer.writeheader()
        for row in sample_rows(n, seed=seed, today=today, months_back=months_back):
            writer.writerow(row)
    return path
