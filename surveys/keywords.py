"""Opt-out, opt-in and help keywords, and sentences that ask us to stop texting.

``classify_keyword`` mirrors Twilio's Advanced Opt-Out single-word keywords (REFERENCE.md):
the whole text must be one keyword, any case, surrounding punctuation, emoji and spaces
ignored. ``YES`` is returned as ``Keyword.YES``: from a stopped patient it means START, from an
active one it answers the question in hand; the caller decides.

``asks_to_stop`` catches sentences ("stop texting me", "take me off your list") that Twilio
does not treat as STOP; the caller stops all texts and raises an ``opt_out_review`` alert so a
person checks. It is deliberately narrow: "I stopped going to the group" or "no" must not fire.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    YES = "yes_keyword"
    HELP = "help"


_KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ("stop", "stopall", "unsubscribe", "end", "quit", "cancel", "optout", "revoke"),
        Keyword.STOP,
    ),
    **dict.fromkeys(("start", "unstop"), Keyword.START),
    "yes": Keyword.YES,
    **dict.fromkeys(("help", "info"), Keyword.HELP),
}


def _strip_edges(text: str) -> str:
    """Drop non-letters (punctuation, emoji, NUL, spaces) at both ends."""
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def classify_keyword(text: str | None) -> Keyword | None:
    """The keyword ``text`` consists of, or None (a sentence is never a keyword)."""
    if not text:
        return None
    word = _strip_edges(unicodedata.normalize("NFKC", text)).casefold()
    return _KEYWORDS.get(word)


_TEXTING = r"(?:text|texts|texting|txt|txts|txting|message|messages|messaging|msg|msgs|sms|sending)"
_BOTHER = r"(?:contacting|contact|calling|call|ringing|emailing|bothering|pestering|hassling)"
_ME = r"(?:me|us|my (?:number|phone|mobile)|this number)"
_STOP_SENTENCES = [
    # "stop texting me", "please stop sending these", "can you stop the messages"
    rf"\bstop (?:(?:the|these|your|all|them|those|sending|me) ){{0,2}}{_TEXTING}\b",
    rf"\bstop {_BOTHER} {_ME}\b",
    # a bare request: "please stop", "stop it", "stop now please", "just stop"
    r"^(?:please |pls |plz |just |can you |could you |will you |ok |oh |no )*stop+"
    r"(?: (?:stop+|it|this|now|please|pls|thanks|thank you|them|these|all|asap|immediately))*$",
    # "don't text me again", "do not contact me", "never message me"
    rf"\b(?:dont|do not|never|no need to|stop) (?:\w+ )?(?:{_TEXTING}|{_BOTHER}) {_ME}\b",
    rf"\b(?:dont|do not|no longer|never) (?:want|wish|need) (?:to (?:receive|get|have) )?(?:any |anymore |any more |these |your |the |more |further )*{_TEXTING}\b",
    r"\b(?:dont|do not|no longer) (?:want|wish) to (?:be|get) (?:texted|messaged|contacted)\b",
    rf"\bno (?:more|further) {_TEXTING}\b",
    r"\b(?:want|like|wish|need) to (?:unsubscribe|opt out)\b",
    rf"\b(?:want|like|wish|need) to stop (?:getting |receiving |these |the |your )*{_TEXTING}\b",
    r"\btake (?:me|my (?:number|name|details)) off\b",
    r"\b(?:remove|delete) (?:me|my (?:number|name|details|phone))\b",
    r"\bleave me alone\b",
    r"\b(?:opt|count) me out\b",
    r"\bunsubscribe\b",
    r"\bopt ?out\b",
    # only as the whole message: "no, not interested in groups" answers a question
    r"^(?:im |i am |sorry |no |thanks |)*not interested(?: thanks| thank you| sorry)*$",
    r"\bwrong number\b",
]
_STOP_RE = re.compile("|".join(f"(?:{p})" for p in _STOP_SENTENCES))


def _sentence_words(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("'", "")
    text = re.sub(r"[^\w\s]|_", " ", text.casefold())
    return " ".join(text.split())


def asks_to_stop(text: str | None) -> bool:
    """True when a sentence asks us to stop texting; False for single keywords like "STOP"."""
    if not text:
        return False
    if classify_keyword(text) is not None:
        return False  # a single keyword is classify_keyword's job, not a sentence
    words = _sentence_words(text)
    return bool(words) and _STOP_RE.search(words) is not None
