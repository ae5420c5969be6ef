"""Reply text -> answer value, skip, or a reason to ask again. Pure and forgiving.

``parse_reply(question, raw_text)`` never raises on user input and keeps no state. Keywords
(STOP, HELP, ...) and risk phrases are checked by the caller *before* this, with
``surveys.keywords`` and ``surveys.risk``.

How a reply is read:

1. Unicode NFKC (full-width digits become ASCII), NUL and control characters, emoji and most
   punctuation become spaces; any Unicode decimal digit (Arabic-Indic, Devanagari, ...) counts.
2. ``SKIP`` (or "skip please", "prefer not to say", ...) skips the question.
3. Number words ("seven", "twenty one", "once", "twice") become digits; "7/10" and
   "7 out of 10" are one number when the denominator is the scale's maximum.
4. Several different numbers are ambiguous ("7 8", "10/10 no 7"); one number is checked against
   the question (out of range or a decimal on an integer scale: needs clarification).
5. Choices also match their label and synonyms ("often", "hardly ever"); yes/no questions match
   "y", "yeah", "yep", "no thanks", "nah", a thumbs-up, ...
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from surveys.model import NO, YES, Question, QuestionKind


class ParseKind(StrEnum):
    """What a reply turned out to be."""

    VALUE = "value"  # a codable answer in ``ParseResult.value``
    SKIP = "skip"  # the person chose to skip this question
    NEEDS_CLARIFICATION = "needs_clarification"  # a number, but out of range or not whole
    AMBIGUOUS = "ambiguous"  # several different answers in one text
    EMPTY = "empty"  # no text at all (e.g. a picture-only message)
    UNPARSEABLE = "unparseable"  # text, but no answer we can read


class ClarifyReason(StrEnum):
    """Why a reply cannot be used; keys of the clarification texts."""

    OUT_OF_RANGE = "out_of_range"
    NOT_WHOLE_NUMBER = "not_whole_number"
    SEVERAL_NUMBERS = "several_numbers"
    NOT_UNDERSTOOD = "not_understood"
    NO_TEXT = "no_text"


class ParseResult(BaseModel):
    """Outcome of reading one reply. ``value`` is set only for VALUE; ``reason`` for
    NEEDS_CLARIFICATION, AMBIGUOUS, EMPTY and UNPARSEABLE; ``candidates`` lists the
    different answers seen in an AMBIGUOUS reply."""

    model_config = ConfigDict(frozen=True)

    kind: ParseKind
    value: int | None = None
    reason: ClarifyReason | None = None
    candidates: tuple[int, ...] = ()

    @property
    def is_answer(self) -> bool:
        return self.kind is ParseKind.VALUE


def _value(v: int) -> ParseResult:
    return ParseResult(kind=ParseKind.VALUE, value=v)


def _clarify(reason: ClarifyReason) -> ParseResult:
    return ParseResult(kind=ParseKind.NEEDS_CLARIFICATION, reason=reason)


def _ambiguous(values: set[int]) -> ParseResult:
    return ParseResult(
        kind=ParseKind.AMBIGUOUS,
        reason=ClarifyReason.SEVERAL_NUMBERS,
        candidates=tuple(sorted(values)),
    )


_SKIP = ParseResult(kind=ParseKind.SKIP)
_EMPTY = ParseResult(kind=ParseKind.EMPTY, reason=ClarifyReason.NO_TEXT)
_UNREADABLE = ParseResult(kind=ParseKind.UNPARSEABLE, reason=ClarifyReason.NOT_UNDERSTOOD)

# --- normalisation -----------------------------------------------------------------------

_KEEP_PUNCT = frozenset("./-")
_DIGIT_RE = re.compile(r"\d")  # any Unicode decimal digit
_APOSTROPHES = str.maketrans({"\u2019": "", "\u2018": "", "'": "", "`": "", "\u02bc": ""})
_EMOJI_WORDS = {"\U0001f44d": " thumbsup ", "\U0001f44e": " thumbsdown ", "\u2705": " tick "}


def _normalise(raw: str) -> str:
    """Lower-case words, Unicode digits and ``./-`` separated by single spaces."""
    text = unicodedata.normalize("NFKC", raw).translate(_APOSTROPHES)
    for emoji, word in _EMOJI_WORDS.items():
        if emoji in text:
            text = text.replace(emoji, word)
    out = []
    for ch in text:
        if ch.isalpha() or ch in _KEEP_PUNCT or unicodedata.category(ch) == "Nd":
            out.append(ch)
        else:
            out.append(" ")
    return " ".join("".join(out).casefold().split())


def _words(text: str) -> str:
    """Letters only, single-spaced, for phrase matching."""
    return " ".join(re.sub(r"[^\w]|\d|_", " ", text).split())


# --- skip and number words ---------------------------------------------------------------

_SKIP_RE = re.compile(
    r"^pass(?: please| thanks)?$|\bskipping (?:this|that|it|the question)\b"
    r"|\b(?:skip+|next question|n/a"
    r"|(?:prefer|rather|id rather|would rather) not(?: to)?(?: say| answer)?"
    r"|dont want to (?:say|answer)|no comment)\b"
)

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD_VALUE = {w: i for i, w in enumerate(_UNITS)} | {"nought": 0, "once": 1, "twice": 2}
_TENS_VALUE = {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_NUMBER_WORD_RE = re.compile(
    r"\b(?:(?P<tens>" + "|".join(_TENS) + r")(?:[ -](?P<unit>one|two|three|four|five|six|"
    r"seven|eight|nine))?|(?P<word>" + "|".join(_WORD_VALUE) + r"))\b"
)
# "one" used as a pronoun is not an answer: "this one", "no one", "the one".
_PRONOUN_ONE_RE = re.compile(r"\b(?:this|that|the|no|any|some|every|each|which|last) one\b")
_COUNT_ZERO_RE = re.compile(
    r"^(?:no|nope|nothing|zero times|no times)$"
    r"|\b(?:none|nil|never|not once|not at all|not any|havent been|have not been)\b"
)
# "once a month", "2 times a week": a rate, not the total we asked for.
_RATE_RE = re.compile(
    r"(?<!\d)\d+(?: times?| x)? (?:a|per|each|every) (?:day|week|fortnight|month|year)\b"
)


def _digits_for_words(text: str) -> str:
    text = _PRONOUN_ONE_RE.sub(" ", text)

    def repl(m: re.Match[str]) -> str:
        if m.group("tens"):
            unit = m.group("unit")
            return str(_TENS_VALUE[m.group("tens")] + (_UNITS.index(unit) if unit else 0))
        return str(_WORD_VALUE[m.group("word")])

    return _NUMBER_WORD_RE.sub(repl, text)


# --- numbers -----------------------------------------------------------------------------

_OUT_OF_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(?:/|out of|outta|oo)\s*(\d+)(?![\d.])")
# A leading minus counts only at the start of a word: "-1" is negative, "6-7" is a range.
_NUMBER_RE = re.compile(r"(?P<neg>(?<![\w.])-\s?)?(?P<int>\d+)(?:\.(?P<frac>\d+))?")
_CONTEXT_UNIT_RE = re.compile(r"\s*(?:months?|mths?|weeks?|wks?|days?|years?|yrs?|hours?|am|pm)\b")


class _Number(NamedTuple):
    value: int
    whole: bool
    context: bool  # followed by a time unit ("in the last 6 months"): not the answer


def _numbers(text: str, denominator: int | None) -> list[_Number]:
    if denominator is not None:
        # "7/10", "7 out of 10": keep the numerator when the denominator is the scale maximum.
        text = _OUT_OF_RE.sub(
            lambda m: m.group(1) if m.group(2).lstrip("0") == str(denominator) else m.group(0),
            text,
        )
    found: list[_Number] = []
    answers_seen: set[tuple[int, bool]] = set()
    for m in _NUMBER_RE.finditer(text):
        digits = m.group("int")
        # Very long digit runs (a phone number, a pasted code) are simply out of range.
        value = int(digits) if len(digits) <= 9 else 10**9
        if m.group("neg"):
            value = -value
        frac = m.group("frac")
        whole = frac is None or not frac.strip("0")
        context = bool(_CONTEXT_UNIT_RE.match(text, m.end()))
        found.append(_Number(value, whole, context))
        if not context:
            answers_seen.add((value, whole))
            if len(answers_seen) > 2:
                break  # already ambiguous: no need to read 800 more numbers
    answers = [n for n in found if not n.context]
    return answers if answers else found


def _judge_numbers(question: Question, numbers: list[_Number]) -> ParseResult | None:
    if not numbers:
        return None
    distinct = {(n.value, n.whole) for n in numbers}
    if len(distinct) > 1:
        return _ambiguous({n.value for n in numbers})
    number = numbers[0]
    if not number.whole:
        return _clarify(ClarifyReason.NOT_WHOLE_NUMBER)
    if not question.is_valid_value(number.value):
        return _clarify(ClarifyReason.OUT_OF_RANGE)
    return _value(number.value)


# --- words -------------------------------------------------------------------------------

_UNSURE_RE = re.compile(
    r"\b(?:not sure|unsure|dont know|do not know|dunno|idk|no idea|maybe|perhaps|cant say"
    r"|not certain|depends)\b"
)
_STRONG_YES = r"(?:y|ye+s+|yess+|yeah+|yea|yah|ya|yas|yep+|yup+|aye|thumbsup)"
_STRONG_NO = r"(?:n|no+|nope|nah+|naw|nay|thumbsdown)"
_STRONG_YES_RE = re.compile(rf"\b{_STRONG_YES}\b")
_STRONG_NO_RE = re.compile(rf"\b{_STRONG_NO}\b")
_FIRST_YES_RE = re.compile(rf"^{_STRONG_YES}\b")
_FIRST_NO_RE = re.compile(rf"^{_STRONG_NO}\b")
_YES_RE = re.compile(
    r"\b(?:ok|okay|okey|oki|sure|definitely|certainly|absolutely|of course|please do|tick"
    r"|why not|i do(?! not)|i would like|id like|would like that|that would be (?:nice|good|great|lovely))\b"
    r"|^(?:please|pls|plz)$"
)
_NO_RE = re.compile(
    r"\b(?:not|never|negative|no thanks|no thank you|dont|do not|im not|i am not|i wouldnt"
    r"|none|no need)\b"
)


def _parse_yesno(words: str) -> ParseResult:
    """A clear yes or no word first decides ("yes but not every week"); both clear words
    anywhere is ambiguous ("yes and no"); otherwise weaker words ("sure", "not really")."""
    if _UNSURE_RE.search(words):
        return _UNREADABLE
    strong_yes, strong_no = _STRONG_YES_RE.search(words), _STRONG_NO_RE.search(words)
    if strong_yes and strong_no:
        return _ambiguous({YES, NO})
    if _FIRST_YES_RE.match(words):
        return _value(YES)
    if _FIRST_NO_RE.match(words):
        return _value(NO)
    words = words.replace("why not", "ok")
    yes = bool(strong_yes or _YES_RE.search(words))
    no = bool(strong_no or _NO_RE.search(words))
    if yes and no:
        return _ambiguous({YES, NO})
    if yes:
        return _value(YES)
    if no:
        return _value(NO)
    return _UNREADABLE


@lru_cache(maxsize=256)
def _choice_matcher(
    options: tuple[tuple[int, tuple[str, ...]], ...],
) -> tuple[re.Pattern[str], dict[str, int]]:
    """One regex for every label and synonym, longest first so "most of the time" beats
    "time"; a preceding "not" ("not often", "not very often") is captured as ``neg``."""
    by_phrase: dict[str, int] = {}
    for value, phrases in options:
        for phrase in phrases:
            cleaned = _words(_normalise(phrase))
            if cleaned:
                by_phrase.setdefault(cleaned, value)
    alternation = "|".join(re.escape(p) for p in sorted(by_phrase, key=len, reverse=True))
    pattern = re.compile(rf"(?P<neg>\bnot (?:very |that |so )?)?\b(?P<phrase>{alternation})\b")
    return pattern, by_phrase


def _choice_words(question: Question, words: str) -> set[int] | None:
    """Values named by words; None when a named option is negated ("not often")."""
    options = tuple((c.value, (c.label, *c.synonyms)) for c in question.choices)
    pattern, by_phrase = _choice_matcher(options)
    values: set[int] = set()
    for m in pattern.finditer(words):
        if m.group("neg"):
            return None
        values.add(by_phrase[m.group("phrase")])
    return values


# --- entry point -------------------------------------------------------------------------


def parse_reply(question: Question, raw_text: str | None) -> ParseResult:
    """Read one reply to ``question``; never raises on any text."""
    if raw_text is None:
        return _EMPTY
    cleaned_raw = raw_text.replace("\x00", "")
    if not cleaned_raw.strip():
        return _EMPTY
    text = _normalise(cleaned_raw)
    if not text.strip(" ./-"):
        return _UNREADABLE  # only emoji, symbols or punctuation

    has_digit = _DIGIT_RE.search(text) is not None
    if _SKIP_RE.search(text):
        return _ambiguous(set()) if has_digit else _SKIP

    kind = question.kind
    if kind is QuestionKind.YESNO:
        return _parse_yesno(_words(text))

    words = _words(text)
    with_digits = _digits_for_words(text)
    if kind is QuestionKind.COUNT and _RATE_RE.search(with_digits):
        return _UNREADABLE
    denominator = question.max if kind is QuestionKind.SCALE else None
    from_numbers = _judge_numbers(question, _numbers(with_digits, denominator))

    if kind is QuestionKind.CHOICE:
        named = _choice_words(question, words)
        if named is None:
            return _UNREADABLE
        if from_numbers is not None and from_numbers.kind is ParseKind.VALUE:
            assert from_numbers.value is not None
            named = named | {from_numbers.value}
        elif from_numbers is not None and not named:
            return from_numbers
        elif from_numbers is not None:
            return _ambiguous(named | set(from_numbers.candidates))
        if len(named) > 1:
            return _ambiguous(named)
        return _value(named.pop()) if named else _UNREADABLE

    if from_numbers is not None:
        return from_numbers
    if kind is QuestionKind.COUNT and _COUNT_ZERO_RE.match(words):
        return _value(0)
    if kind is QuestionKind.SCALE:
        for anchor, value in (
            (question.anchor_low, question.min),
            (question.anchor_high, question.max),
        ):
            if anchor and value is not None and words == _words(_normalise(anchor)):
                return _value(value)
    return _UNREADABLE
