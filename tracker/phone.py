"""Phone numbers as people write them -> E.164 mobile numbers, or a reason why not."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType

_TEXTABLE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}

# The common case ("07911 123456", "+44 7911 123456", "447911123456", "(07911) 123-456"):
# a UK 07 number with only spaces, dashes, dots or brackets around it. Building the number
# directly and asking phonenumbers for its type costs ~15 us instead of ~50 us for a full
# parse; anything else, and every rejection, takes the full path (which explains the problem).
_PUNCTUATION = str.maketrans("", "", " -.()\t")
_UK_MOBILE_SHAPE = re.compile(r"(?:\+44|44|0|\+440)(7\d{9})")


class PhoneError(ValueError):
    """The number cannot be used for texts; str() says why and what to do."""


def normalise_mobile(raw: str, region: str = "GB") -> str:
    """Return the E.164 form of a mobile number, e.g. '07911 123456' -> '+447911123456'."""
    text = (raw or "").strip()
    if region == "GB":
        shape = _UK_MOBILE_SHAPE.fullmatch(text.translate(_PUNCTUATION))
        if shape is not None:
            national = shape.group(1)
            number = PhoneNumber(country_code=44, national_number=int(national))
            if phonenumbers.number_type(number) in _TEXTABLE:
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
