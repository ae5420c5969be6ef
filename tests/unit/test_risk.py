"""Risk scan: phrasings that must fire (with misspellings) and everyday texts that must not."""

from __future__ import annotations

import time

import pytest

from surveys import RiskCategory, scan_for_risk

S, H, C = RiskCategory.SUICIDE, RiskCategory.SELF_HARM, RiskCategory.CRISIS

RISKY: list[tuple[str, RiskCategory]] = [
    ("I want to kill myself", S),
    ("i'm going to kill my self", S),
    ("kil myself", S),
    ("KILL MYSELF", S),
    ("k1ll mys3lf", S),
    ("i could kill myslef", S),
    ("feeling suicidel", S),
    ("sucidal thoughts again", S),
    ("I feel suicidal", S),
    ("suiside", S),
    ("SUICIDE!!!", S),
    ("I want to end it all", S),
    ("thinking of ending it all", S),
    ("I feel like ending it", S),
    ("planning to end my life", S),
    ("I don't want to be here anymore", S),
    ("dont want to be here any more", S),
    ("I don\u2019t want to be here anymore", S),
    ("everyone would be better off without me", S),
    ("I'd be better off dead", S),
    ("better of dead", S),
    ("I want to die", S),
    ("i wanna die", S),
    ("wantt to dieee", S),
    ("want to die \U0001f622", S),
    ("Since mum died I want to die", S),
    ("I wish I was dead", S),
    ("wish i wasnt alive", S),
    ("no reason to live", S),
    ("There's no point in living", S),
    ("I have nothing to live for", S),
    ("life's not worth living", S),
    ("I cant go on", S),
    ("cant go on", S),
    ("can't go on like this", S),
    ("I can't go on anymore, I'm so tired", S),
    ("I can't take it anymore", S),
    ("i want to hang myself", S),
    ("going to jump off a bridge", S),
    ("kms", S),
    ("life is pointless", S),
    ("I've been self harming", H),
    ("selfharm", H),
    ("self-harm again", H),
    ("Self harm", H),
    ("I keep hurting myself", H),
    ("I've been cutting myself", H),
    ("I want to hurt myself", H),
    ("hurt myself again last night", H),
    ("I took an overdose last night", H),
    ("thinking about an overdose", H),
    ("overdosed", H),
    ("ovrdose", H),
    ("took all my tablets", H),
    ("I'm in crisis", C),
    ("I don't feel safe at home", C),
    ("I can't cope anymore", C),
    ("i am at breaking point", C),
    ("i feel hopeless", C),
    ("I just want to disappear", C),
    (
        "Hi, thanks for the text. Things have been really bad since my husband left and "
        "honestly some days I think everyone would be better off without me.",
        S,
    ),
    ("7. Also I have been feeling suicidal lately", S),
    ("nobody would miss me", S),
    ("I want it all to end", S),
    ("I just want to go to sleep and never wake up", S),
    ("I'm tired of living", S),
    ("sick of life tbh", S),
    ("I feel like such a burden", C),
    ("wanna kms", S),
    ("I've been selfarming", H),
    ("sucide", S),
    ("I tried to kill myself last year", S),
    ("Im going to take all my pills", H),
    ("I want to be dead", S),
    ("I'm going to end it tonight", S),
    ("what's the point in living", S),
    ("whats the point anymore", S),
    ("I don't see the point in living", S),
    ("I wish I could just go to sleep forever", S),
    ("I've written a goodbye letter", S),
    ("I want to stop existing", S),
    ("kil my slef", S),
    ("i want to unalive myself", S),
    ("i can't stop thinking about dying", S),
    ("I've been cutting again", H),
    ("\u0455uicidal", S),  # Cyrillic s
    ("su\u00efcide", S),  # diaeresis
    ("I w\u0430nt to d\u0456e", S),  # Cyrillic a and i
    ("I'm not coping at all", C),
    ("I feel like giving up", C),
    ("there's no way out", C),
    ("I feel trapped and hopeless", C),
]

HARMLESS = [
    "killing time",
    "dying to see the grandkids",
    "this weather is killing me",
    "I could murder a cup of tea",
    "died laughing",
    "I nearly killed myself laughing",
    "my dad died last year",  # bereavement alone is not a disclosure (see surveys/risk.py)
    "my mum is dying of cancer",
    "dead tired",
    "kill the lights",
    "end of the month",
    "overdue",
    "my prescription is overdue",
    "I overdone it in the garden",
    "I overdid it at the gym",
    "my feet are killing me",
    "my phone died",
    "the battery is dead",
    "I can't go on Tuesday",
    "I hurt myself in the garden",
    "cut myself shaving",
    "the cost of living crisis is hard",
    "I'd kill for a holiday",
    "dying for a cuppa",
    "my plants are dead",
    "I nearly died of embarrassment",
    "no reason to complain",
    "I'm fine thanks",
    "7",
    "yes",
    "no",
    "STOP",
    "I stopped going to the group",
    "the end of the road for my old car",
    "self service checkout",
    "the group is my lifeline",
    "I want to live by the sea",
    "I am safe",
    "killer sudoku",
    "I'd rather not",
    "I can't make it this week",
    "myself and my husband are well",
    "overdraft",
    "I'd die for a roast dinner",
    "the drama was to die for",
    "dead end job",
    "I'm sick of the rain",
    "I'm tired of waiting for the bus",
    "nobody would notice the new curtains",
    "I want this winter to end",
    "I slept and woke up late",
    "I take all my tablets every morning",
    "the odd day is hard but mostly fine",
    "I feel like giving up on the diet",
    "there's no way out of the car park",
    "the bus is hopeless",
    "I'm thinking about the weekend",
    "the thoughts of my late husband keep me going",
    "I've been cutting the hedge again",
    "I wrote a letter to my son",
    "whats the point of the new bins",
    "I'm coping well now",
    "Seven out of ten, the group is brilliant",
    "",
]


def test_enough_cases() -> None:
    assert len(RISKY) >= 30 and len(HARMLESS) >= 30


@pytest.mark.parametrize(("text", "category"), RISKY)
def test_risky_texts_fire(text: str, category: RiskCategory) -> None:
    match = scan_for_risk(text)
    assert match is not None, text
    assert match.category is category, match


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_texts_stay_quiet(text: str) -> None:
    assert scan_for_risk(text) is None


def test_any_mention_of_suicide_fires_even_about_someone_else() -> None:
    # Deliberate: a person reads the alert and decides; we never guess it is about a friend.
    assert scan_for_risk("my sister is suicidal") is not None


def test_match_carries_no_text() -> None:
    match = scan_for_risk("Jane here, I want to kill myself")
    assert match is not None
    assert set(match.model_dump()) == {"category", "rule"}
    assert "jane" not in repr(match).lower()
    assert match.rule == "kill_myself"  # a rule id of ours, safe to log


def test_odd_input_is_safe() -> None:
    # "a2b", "x\u0662y": digits that are not leetspeak once sent the word reader into a loop.
    odd = (
        None,
        "\x00" * 1600,
        "\U0001f600" * 800,
        "\ud800",
        "a" * 1600,
        "7" * 1600,
        "a2b",
        "x\u0662y",
    )
    for text in odd:
        assert scan_for_risk(text) is None
    assert scan_for_risk("I want to\x00 die") is not None


def test_long_bodies_are_fast() -> None:
    filler = "We went to the garden centre and had a lovely time with the grandchildren. "
    bodies = [(filler * 25)[:1550] + " I want to die", (filler * 25)[:1600]]
    started = time.perf_counter()
    results = [scan_for_risk(b) for b in bodies * 10]
    per_text = (time.perf_counter() - started) / len(results)
    assert results[0] is not None and results[1] is None
    assert per_text < 0.05, f"{per_text * 1000:.1f} ms per 1,600-character text"
