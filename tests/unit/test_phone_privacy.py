"""Phone numbers (E.164, mobiles only) and the privacy primitives built on the secret key."""

from __future__ import annotations

import random
import re
import stat
from pathlib import Path

import pytest

from tracker import phone
from tracker.config import ConfigError
from tracker.phone import PhoneError, mask, normalise_mobile
from tracker.privacy import (
    Crypto,
    decode_key,
    ensure_key_file,
    generate_key,
    load_crypto,
)

from ..conftest import TEST_KEY, make_settings


@pytest.mark.parametrize(
    "written",
    [
        "07911 123456",
        "07911123456",
        "+44 7911 123456",
        "+447911123456",
        "447911123456",
        "44 7911 123456",
        "(07911) 123-456",
        "07911-123-456",
        "07911.123.456",
        "+44 (0)7911 123456",
        " 07911 123456 ",
    ],
)
def test_numbers_as_people_write_them(written: str) -> None:
    assert normalise_mobile(written) == "+447911123456"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("020 7946 0018", "landline can read a text aloud"),
        ("0161 496 0000", "not a mobile number"),
        ("0800 123 4567", "not a mobile number"),
        ("07911 12345", "not a valid phone number"),
        ("07911 1234567", "not a valid phone number"),
        ("hello", "not a phone number"),
        ("", "empty"),
        ("+44 20 7946 0018", "landline"),
    ],
)
def test_unusable_numbers_say_why(written: str, reason: str) -> None:
    with pytest.raises(PhoneError, match=reason):
        normalise_mobile(written)


def test_crown_dependency_mobiles_take_the_full_path() -> None:
    # Isle of Man and Jersey mobiles are +44 numbers outside GB's own patterns.
    assert normalise_mobile("07624 123456") == "+447624123456"


def _full_path(raw: str) -> str | None:
    saved = phone._UK_MOBILE_SHAPE
    phone._UK_MOBILE_SHAPE = re.compile(r"(?!)")  # never take the shortcut
    try:
        return normalise_mobile(raw)
    except PhoneError:
        return None
    finally:
        phone._UK_MOBILE_SHAPE = saved


def _with_shortcut(raw: str) -> str | None:
    try:
        return normalise_mobile(raw)
    except PhoneError:
        return None


def test_the_mobile_shortcut_agrees_with_a_full_parse() -> None:
    rng = random.Random(2026)
    numbers = [f"07{rng.randrange(10**9):09d}" for _ in range(3000)]
    numbers += [f"+44 7{rng.randrange(10**9):09d}" for _ in range(500)]
    accepted = 0
    for raw in numbers:
        full = _full_path(raw)
        assert _with_shortcut(raw) == full, raw
        accepted += full is not None
    assert 1000 < accepted < len(numbers)  # both outcomes were exercised


def test_mask_shows_only_the_last_three_digits() -> None:
    assert mask("+447911123456") == "**********456"


# --- privacy -------------------------------------------------------------------------------


@pytest.fixture
def crypto() -> Crypto:
    return Crypto(decode_key(TEST_KEY))


def test_encryption_round_trips_and_never_repeats(crypto: Crypto) -> None:
    first = crypto.encrypt_phone("+447911123456")
    second = crypto.encrypt_phone("+447911123456")
    assert first != second  # random nonce: equal numbers are not linkable from ciphertext
    assert b"7911" not in first and b"447911123456" not in first
    assert crypto.decrypt_phone(first) == crypto.decrypt_phone(second) == "+447911123456"


def test_blind_index_is_deterministic_and_keyed(crypto: Crypto) -> None:
    other = Crypto(decode_key(generate_key()))
    index = crypto.phone_index("+447911123456")
    assert index == crypto.phone_index("+447911123456")
    assert index != crypto.phone_index("+447911123457")
    assert index != other.phone_index("+447911123456")
    assert re.fullmatch(r"[0-9a-f]{64}", index)


def test_a_different_key_cannot_decrypt(crypto: Crypto) -> None:
    other = Crypto(decode_key(generate_key()))
    with pytest.raises(ConfigError, match="cannot be decrypted with this TRACKER_SECRET_KEY"):
        other.decrypt_phone(crypto.encrypt_phone("+447911123456"))


def test_pseudonyms_are_stable_per_study_and_unlinkable_across(crypto: Crypto) -> None:
    a = crypto.pseudonym("study-a", "P1")
    assert a == crypto.pseudonym("study-a", "P1")
    assert a != crypto.pseudonym("study-b", "P1")
    assert a != crypto.pseudonym("study-a", "P2")
    assert "P1" not in a and len(a) == 16


@pytest.mark.parametrize("bad", ["c2hvcnQ=", "not base64 at all!!"])
def test_weak_or_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="TRACKER_SECRET_KEY"):
        decode_key(bad)


def test_key_file_is_created_once_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "tracker.key"
    assert ensure_key_file(path) is True
    content = path.read_text()
    assert ensure_key_file(path) is False
    assert path.read_text() == content
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(decode_key(content)) == 32


def test_load_crypto_explains_a_missing_key(tmp_path: Path) -> None:
    embedded = make_settings(f"sqlite:///{tmp_path}/tracker.db").model_copy(
        update={"secret_key": None}
    )
    with pytest.raises(ConfigError, match="run `tracker init`"):
        load_crypto(embedded)
    ensure_key_file(embedded.default_key_path)
    assert load_crypto(embedded).phone_index("+447911123456")
    server = embedded.model_copy(update={"database_url": "postgresql://db/tracker"})
    with pytest.raises(ConfigError, match="set TRACKER_SECRET_KEY or TRACKER_SECRET_KEY_FILE"):
        load_crypto(server)
