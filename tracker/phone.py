"""Phone numbers as people write them -> E.164 mobile numbers, or a reason why not."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

_TEXTABLE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}

# The common case ("07911 123456", "+44 7911 123456", "447911123456", "(07911) 123-456"):
# a UK 07 number with only spaces, dashes, dots or brackets around it. Checking it against
# phonenumbers' own GB patterns, in the order its number_type() uses, costs ~2 us instead of
# ~50 us for a full parse (imports check 10,000s of numbers a second). Anything else, and every
# rejection, takes the full path, which explains the problem. A unit test compares both paths
# on random numbers, so a metadata change that breaks the shortcut is caught.
_PUNCTUATION = str.maketrans("", "", " -.()\t")
_UK_MOBILE_SHAPE = re.compile(r"(?:\+44|44|0|\+440)(7\d{9})")
_GB = phonenumbers.PhoneMetadata.metadata_for_region("GB")


def _pattern(*descs: object) -> re.Pattern[str]:
    parts = [
        d.national_number_pattern for d in descs if d is not None and d.national_number_pattern
    ]  # type: ignore[attr-defined]
    return re.compile("|".join(f"(?:{p})" for p in parts) or "(?!)")


_GB_ANY = _pattern(_GB.general_desc)
# Types number_type() tests before mobile: a match means "not a mobile".
_GB_NOT_MOBILE = _pattern(
    _GB.premium_rate,
    _GB.toll_free,
    _GB.shared_cost,
    _GB.voip,
    _GB.personal_number,
    _GB.pager,
    _GB.uan,
    _GB.voicemail,
)
_GB_MOBILE = _pattern(_GB.mobile)


def _is_gb_mobile(national: str) -> bool:
    return (
        _GB_ANY.fullmatch(national) is not None
        and _GB_NOT_MOBILE.fullmatch(national) is None
        and _GB_MOBILE.fullmatch(national) is not None
    )


class PhoneError(ValueError):
    """The number cannot be used for texts; str() says why and what to do."""


def normalise_mobile(raw: str, region: str = "GB") -> str:
    """Return the E.164 form of a mobile number, e.g. '07911 123456' -> '+447911123456'."""
    text = (raw or "").strip()
    if region == "GB":
        shape = _UK_MOBILE_SHAPE.fullmatch(text.translate(_PUNCTUATION))
        if shape is not None:
            national = shape.group(1)
            if _is_gb_mobile(national):
                return "+44" + national
    if not text:
        raise PhoneError("phone number is empty (give a UK mobile number, e.g. 07911 123456)")
    # People write international numbers without the plus ("447911123456").
    digits = "".join(ch for ch in text if ch.isdigit())
    if not text.startswith("+") and not text.startswith("0") and digits.startswith("44"):
        text = "+" + digits
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise PhoneError(
            f"{raw!r} is not a phone number (give a UK mobile number, e.g. 07911 123456)"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(
            f"{raw!r} is not a valid phone number (check the digits; UK mobiles start 07)"
        )
    if phonenumbers.number_type(number) not in _TEXTABLE:
        raise PhoneError(
            f"{raw!r} is not a mobile number: a landline can read a text aloud to whoever "
            "answers, so give the patient's mobile number or leave them out of texting"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(e164: str) -> str:
    """A display form that shows only the last three digits (for staff screens)."""
    return "*" * max(len(e164) - 3, 0) + e164[-3:]
