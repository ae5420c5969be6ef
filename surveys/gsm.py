"""GSM-7 character set and SMS segment counting.

One character outside GSM-7 (a curly quote, an emoji, a non-breaking space) switches the whole
text to UCS-2, which cuts a text from 160 to 70 characters and can triple the cost. Extension
characters (``^{}\\[~]|€`` and form feed) are sent as an escape plus a character: two septets.
"""

from __future__ import annotations

import math

# 3GPP TS 23.038 default alphabet, without ESC (0x1B), which is not a character of its own.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE_GSM7 = 160
PART_GSM7 = 153
SINGLE_UCS2 = 70
PART_UCS2 = 67
MAX_BODY = 1600


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent in the GSM-7 alphabet."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def gsm7_offenders(text: str) -> str:
    """The distinct characters of ``text`` outside GSM-7, in order of first appearance."""
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            seen.setdefault(ch)
    return "".join(seen)


def gsm7_length(text: str) -> int:
    """Septets ``text`` takes in GSM-7 (extension characters count two). Assumes is_gsm7."""
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


def ucs2_length(text: str) -> int:
    """UTF-16 code units: characters beyond the BMP (most emoji) count two."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def sms_segments(text: str) -> int:
    """How many SMS parts ``text`` is billed as (GSM-7 160/153, otherwise UCS-2 70/67)."""
    if not text:
        return 1
    if is_gsm7(text):
        n, single, part = gsm7_length(text), SINGLE_GSM7, PART_GSM7
    else:
        n, single, part = ucs2_length(text), SINGLE_UCS2, PART_UCS2
    return 1 if n <= single else math.ceil(n / part)
