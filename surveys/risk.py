"""Scan any inbound text for self-harm, suicide and crisis language.

``scan_for_risk(text)`` returns the category and the id of the rule that matched, never the
text. The caller runs it on every inbound text before anything else (also from stopped and
unknown senders), replies with crisis signposting and raises a ``risk`` alert.

Approach (bias: a false alarm costs a person a few minutes; a miss can cost a life):

1. Normalise: Unicode NFKC, lower case, accents and look-alike Cyrillic/Greek letters mapped
   to plain Latin, apostrophes dropped ("don't" -> "dont"), split into
   clauses at . ! ? ; , and line breaks, words of letters and digits.
2. Canonicalise each word against the vocabulary the phrase rules use:
   - exact match;
   - repeated letters collapsed on both sides ("kil", "killl" -> "kill", "diiie" -> "die");
   - digits read as letters inside words that mix both ("k1ll", "su1c1de", "0verdose");
   - bounded edit distance (Damerau, 1 edit up to 8 letters, 2 beyond) on a few long,
     distinctive key words only ("suicidel", "sucide", "myslef", "overdoes"), with common
     English look-alikes excluded ("overdue", "overdone").
   Joined and split forms are unified first: "self harm"/"self-harm" -> "selfharm",
   "my self" -> "myself", "wanna" -> "want to", "can not"/"cannot" -> "cant".
3. Phrase rules (regular expressions over the canonical words) per category. Figures of
   speech stay quiet because rules need the self-directed or intent form: "kill myself" fires,
   "this weather is killing me", "killing time" and "kill the lights" do not; "want to die"
   fires, "dying to see the grandkids" and "died laughing" do not; "cant go on" fires only at
   the end of a clause or with "anymore", so "cant go on Tuesday" does not.

Decided and tested: a bereavement on its own ("my dad died last year") is not a risk
disclosure and does not fire; it is stored with the answers for staff to read, and it fires
when it comes with risk language ("since mum died I want to die"). An accidental injury
("I hurt myself in the garden", "cut myself shaving") does not fire; intent does
("I want to hurt myself", "I have been cutting myself", "hurting myself again").
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ConfigDict


class RiskCategory(StrEnum):
    SUICIDE = "suicide"
    SELF_HARM = "self_harm"
    CRISIS = "crisis"


class RiskMatch(BaseModel):
    """Which kind of risk language was found, and the id of the rule; never the text itself."""

    model_config = ConfigDict(frozen=True)

    category: RiskCategory
    rule: str


_ME = r"(?:myself|meself|me)"
_INTENT = (
    r"(?:want|wanted|wanting|going|urge|tempted|tried|try|trying|thinking about|thought about"
    r"|feel like|felt like|started|plan|planning|might|will|gonna)"
)
_PILLS = r"(?:pills|tablets|meds|medication|medicine|paracetamol|painkillers|sleeping pills)"

_S, _H, _C = RiskCategory.SUICIDE, RiskCategory.SELF_HARM, RiskCategory.CRISIS
_RULES: list[tuple[RiskCategory, str, str]] = [
    (_S, "suicide_word", r" (?:suicide|suicidal|suicidally) "),
    (
        _S,
        "kill_myself",
        r" (?:(?:kill|killing|killed) (?:myself|meself)(?! laughing| with laughter)|kms) ",
    ),
    (_S, "end_my_life", r" (?:end|ending|take|taking|took) (?:my|me) (?:own )?life "),
    (_S, "end_it_all", r" (?:end|ending) (?:it|things|everything) all "),
    (
        _S,
        "ending_it",
        r" (?:thinking (?:of|about)|feel like|felt like|considering|planning|plan on|might end up)"
        r" ending (?:it|things|everything|my life) ",
    ),
    (_S, "done_with_life", r" (?:done|finished) with (?:life|living|it all) "),
    (_S, "life_pointless", r" (?:life|living) (?:is |s |feels |seems )?(?:pointless|meaningless) "),
    (_S, "no_point_anymore", r" no point (?:anymore|any longer|in anything) "),
    (
        _S,
        "nobody_would_miss_me",
        r" (?:nobody|no one|noone) (?:would|will|wud|is going to) (?:miss|care about|notice) (?:me|if i) ",
    ),
    (
        _S,
        "want_it_to_end",
        r" want (?:it|this|everything|the pain|my life) (?:all )?to (?:end|be over) ",
    ),
    (_S, "never_wake_up", r" (?:sleep|go to sleep|fall asleep) and (?:never|not) wake up "),
    (_S, "tired_of_living", r" (?:tired|sick|weary) of (?:living|life|being alive) "),
    (_C, "burden", r" (?:im|i am|i feel like|feel like) (?:just |such )?a burden "),
    (_S, "end_it_soon", r" end it (?:tonight|today|now|soon|this week) "),
    (
        _S,
        "whats_the_point",
        r" (?:whats|what is|dont see|cant see|do not see) (?:the |any )?point (?:in |of )?"
        r"(?:living|life|being alive|going on|carrying on|anything|anymore|any more) ",
    ),
    (_S, "sleep_forever", r" (?:sleep|go to sleep) (?:forever|for ever|and not wake) "),
    (_S, "stop_existing", r" (?:stop|stopped) existing "),
    (_S, "unalive", r" (?:unalive|unaliving|unalived) | sewerslide "),
    (
        _S,
        "goodbye_note",
        r" (?:goodbye|suicide) (?:note|letter) | goodbye cruel world | saying goodbye to everyone ",
    ),
    (
        _S,
        "thinking_of_dying",
        r" (?:thinking|think|thoughts|thought) (?:about|of) (?:dying|death|ending it|ending my life) ",
    ),
    (_H, "cutting_again", r" (?:been|started|keep|kept|am|im) cutting again "),
    (_C, "not_coping", r" (?:im|i am) not coping | not coping (?:at all|anymore|any more) "),
    (_C, "giving_up", r" (?:feel|feeling|felt) like giving up (?:on (?:life|everything) )?$"),
    (_C, "no_way_out", r" no way out $"),
    (_C, "disappear", r" (?:want|wish|wishing|like) (?:to|i could) disappear "),
    (_S, "end_it", r" (?:want|going|wanted|gonna) to end (?:it|things|everything) $"),
    (_S, "want_to_die", r" (?:want|wanted|wanting|ready|wish|wished|like) to (?:die|be dead) "),
    (_S, "wish_dead", r" (?:wish|wished) (?:i|id) (?:was|were|could be|be|had) (?:dead|died) "),
    (_S, "better_off_dead", r" (?:better off?|rather be|be better) (?:dead|without me) "),
    (_S, "feel_like_dying", r" (?:feel|feeling|felt) like dying "),
    (
        _S,
        "dont_want_to_live",
        r" dont want to (?:be here|live|be alive|exist|wake up|carry on (?:anymore |any longer )?$"
        r"|go on (?:anymore |any longer |living )?$|be around)",
    ),
    (
        _S,
        "wish_not_here",
        r" wish (?:i|id) (?:wasnt|werent|was not|were not|hadnt been) (?:here|alive|born|around) ",
    ),
    (
        _S,
        "no_reason_to_live",
        r" (?:no|not any|nothing) (?:reason|point|purpose) (?:to |in |for )?(?:live|living|go on|going on|carry on|carrying on|being alive|be alive|being here) ",
    ),
    (_S, "nothing_to_live_for", r" nothing (?:left )?to live for "),
    (_S, "not_worth_living", r" (?:not|isnt|no longer) worth living "),
    (
        _S,
        "cant_go_on",
        r" cant (?:go on|carry on|keep going|do this|take it|take this|take any more|take much more)"
        r" (?:anymore |any longer |like this |much longer )?$",
    ),
    (
        _S,
        "cant_go_on_anymore",
        r" cant (?:go on|carry on|keep going|do this|take it) (?:anymore|any longer) ",
    ),
    (
        _S,
        "method",
        r" (?:hang|hanging|drown|drowning|shoot|shooting|gas|gassing) (?:myself|meself) ",
    ),
    (_S, "jump", r" (?:jump|jumping|throw myself) (?:off|in front of|under) (?:a|the) "),
    (_S, "give_up_on_life", r" (?:give|giving|given|gave) up on (?:life|living|everything) "),
    (_H, "selfharm_word", r" selfharm(?:ing|ed|s)? "),
    (_H, "harm_myself", r" (?:harm|harming|harmed) (?:myself|meself) "),
    (_H, "hurting_myself", r" (?:hurting|cutting|burning|injuring|starving) (?:myself|meself) "),
    (_H, "intent_hurt", rf" {_INTENT} (?:to )?(?:hurt|cut|burn|injure|harm) (?:myself|meself) "),
    (
        _H,
        "hurt_again",
        r" (?:hurt|cut|burn|burned|burnt|injured) (?:myself|meself) (?:again|on purpose|deliberately) ",
    ),
    (_H, "overdose", r" (?:overdose|overdosed|overdosing|overdoses) "),
    (
        _H,
        "pills",
        # past or intended, not routine: "I take all my tablets every morning" stays quiet
        rf" (?:took|taken|swallowed|(?:going|want|wanted|about|planning|tempted) to (?:take|swallow)"
        rf"|thinking (?:of|about) taking) (?:all|lots of|loads of|a load of|too many|a handful of"
        rf"|a bottle of|the whole lot of|the lot of)"
        rf" (?:of )?(?:my |the |me )?{_PILLS} ",
    ),
    (_C, "in_crisis", r" (?:in|having) (?:a |an )?(?:mental health |real |big )?crisis "),
    (_C, "crisis_team", r" (?:crisis team|crisis line|mental health crisis) "),
    (
        _C,
        "not_safe",
        r" (?:(?:i|im|i am) not safe|dont feel safe|do not feel safe|feel unsafe|feeling unsafe|not safe at home) ",
    ),
    (_C, "cant_cope", r" cant cope (?:anymore |any more |any longer |with life |with anything )?$"),
    (_C, "breaking_point", r" (?:at|reached|reaching) (?:breaking point|rock bottom) "),
    (_C, "hopeless", r" (?:feel|feeling|felt|so|completely|totally|utterly|and|im|i am) hopeless "),
    (
        _C,
        "need_help_now",
        r" need (?:urgent |immediate |emergency )?help (?:now|urgently|asap|right now|immediately) ",
    ),
]
_COMPILED = [(cat, rule, re.compile(src)) for cat, rule, src in _RULES]
_NOT_A_RULE_WORD = {"to", "of", "on", "off", "up", "in"}
_VOCAB = frozenset(
    w for _, _, src in _RULES for w in re.findall(r"[a-z]{2,}", src.replace("?:", " "))
)

# Long, distinctive words worth fuzzy matching; short words only get the repeated-letter rule.
_FUZZY_KEYS = (
    "suicide",
    "suicidal",
    "myself",
    "meself",
    "overdose",
    "overdosed",
    "selfharm",
    "selfharming",
    "anymore",
)
_NEVER_FUZZ = frozenset(
    {"overdue", "overdone", "overdo", "overdoes", "overdid", "mystery", "mysteries"}
)
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a"}
)
_PHRASES = [
    (re.compile(r"\bself (?:harm)"), "selfharm"),
    (re.compile(r"\b(?:my|me|mi) (?:self|slef|sefl|selfe|slf)\b"), "myself"),
    (re.compile(r"\bany more\b"), "anymore"),
    (re.compile(r"\b(?:can not|cannot|carnt|cnt|cant)\b"), "cant"),
    (re.compile(r"\b(?:do not|don t|dnt|dont)\b"), "dont"),
    (re.compile(r"\b(?:wanna|wana)\b"), "want to"),
    (re.compile(r"\b(?:gonna|gona)\b"), "going to"),
    (re.compile(r"\b(?:i m|im|i am)\b"), "im"),
]


def _collapse(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", word)


_COLLAPSED_VOCAB = {_collapse(w): w for w in sorted(_VOCAB, key=len, reverse=True)}


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance, giving up (returning limit + 1) past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@lru_cache(maxsize=4096)
def _canonical(word: str) -> str:
    if word in _VOCAB or word in _NEVER_FUZZ:
        return word
    if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
        # "1" may stand for i or l: try both readings; keep the word if neither is a rule word.
        for reading in (word.translate(_LEET), word.replace("1", "l").translate(_LEET)):
            if not any(c.isdigit() for c in reading):
                resolved = _canonical(reading)
                if resolved in _VOCAB:
                    return resolved
        return word
    collapsed = _collapse(word)
    if collapsed in _COLLAPSED_VOCAB and collapsed not in _NOT_A_RULE_WORD:
        return _COLLAPSED_VOCAB[collapsed]
    if len(word) >= 5:
        for key in _FUZZY_KEYS:
            limit = 1 if len(key) <= 8 else 2
            if word[0] == key[0] and _edit_distance(word, key, limit) <= limit:
                return key
    return word


_CLAUSE_SPLIT = re.compile(r"[.!?;,:\n\r]+|\s-\s")
_APOSTROPHES = str.maketrans({"'": "", "\u2019": "", "\u2018": "", "`": "", "\u02bc": ""})


# Cyrillic and Greek letters that look Latin ("ѕuicide" with a Cyrillic s).
_LOOKALIKES = str.maketrans("аеорсухіѕјԁνοκτ", "aeopcyxisjdvokt")


def _plain(text: str) -> str:
    """Lower case, accents dropped ("suïcide"), look-alike letters mapped to Latin."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.translate(_LOOKALIKES).translate(_APOSTROPHES)


def _clauses(text: str) -> list[str]:
    text = _plain(text)
    text = text.replace("-", " ")  # "self-harm", "selfharm" and "self harm" alike
    clauses = []
    for part in _CLAUSE_SPLIT.split(text):
        words = " ".join(_canonical(w) for w in re.findall(r"[^\W_]+|@", part))
        for pattern, replacement in _PHRASES:
            words = pattern.sub(replacement, words)
        # Phrase joins can form new vocabulary ("self harm" -> "selfharm"): canonicalise again.
        words = " ".join(_canonical(w) for w in words.split())
        if words:
            clauses.append(f" {words} ")
    return clauses


def scan_for_risk(text: str | None) -> RiskMatch | None:
    """The first risk rule ``text`` matches, or None. Pure; safe on any input."""
    if not text:
        return None
    for clause in _clauses(text.replace("\x00", " ")):
        for category, rule, pattern in _COMPILED:
            if pattern.search(clause):
                return RiskMatch(category=category, rule=rule)
    return None
