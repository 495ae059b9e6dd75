"""How names compare: the keys stored with every client record, computed once at write time.

`name_key` folds a company name (accents, case, punctuation and spacing aside): two records with
the same `name_key` are "certain" duplicates. `token_key` is the sorted set of the name's
significant words (stop words, legal forms and single letters dropped, common abbreviations
expanded): records whose word sets contain one another are "probable" duplicates
(see `duplicates`). Both are plain strings so that PostgreSQL indexes them.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import combinations

# Letters NFKD leaves whole.
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O"})
# Combining marks (accents) once NFKD has split them from their letters.
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Anything but a letter or a digit, of any script.
_NOT_WORD = re.compile(r"[\W_]+")

# Words that carry no identity in a French (or English) organisation name.
STOP_WORDS = frozenset(
    {
        "a",
        "au",
        "aux",
        "chez",
        "d",
        "de",
        "des",
        "du",
        "en",
        "et",
        "l",
        "la",
        "le",
        "les",
        "par",
        "pour",
        "sur",
        "sous",
        "un",
        "une",
        "and",
        "of",
        "the",
    }
)
# Legal forms: "Dupont SARL" and "SARL Dupont" are one company.
LEGAL_FORMS = frozenset(
    {"sa", "sas", "sasu", "sarl", "eurl", "sci", "snc", "scop", "selarl", "eirl", "ei", "gie"}
)
ABBREVIATIONS = {
    "st": "saint",
    "ste": "sainte",
    "cie": "compagnie",
    "asso": "association",
    "assoc": "association",
    "ets": "etablissements",
    "bd": "boulevard",
    "av": "avenue",
    "dept": "departement",
    "ctre": "centre",
}

# Probable duplicates: the larger name has at most this many words more than the smaller one,
# and the smaller one keeps at least this many words (one shared word proves nothing).
MAX_EXTRA_WORDS = 2
MIN_SHARED_WORDS = 2


def clean(text: str) -> str:
    """A name as stored: surrounding and repeated whitespace removed, nothing else changed."""
    return " ".join(text.split())


def fold(text: str) -> str:
    """Accents stripped, case folded, punctuation turned to spaces, spaces collapsed."""
    if not text.isascii():
        text = _MARKS.sub("", unicodedata.normalize("NFKD", text.translate(_LIGATURES)))
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def significant_words(folded: str) -> list[str]:
    """The sorted, distinct words of a folded name that identify it."""
    words = set()
    for word in folded.split():
        word = ABBREVIATIONS.get(word, word)
        if word in STOP_WORDS or word in LEGAL_FORMS:
            continue
        if len(word) == 1 and not word.isdigit():
            continue
        words.add(word)
    return sorted(words)


# Keys are stored (and indexed) in columns of this size: a name that folds longer (NFKD can
# expand some ligatures many times) is compared on its first KEY_LENGTH characters.
KEY_LENGTH = 200


def name_keys(company_name: str) -> tuple[str, str]:
    """(name_key, token_key) of a company name."""
    folded = fold(company_name)[:KEY_LENGTH].rstrip()
    return folded, " ".join(significant_words(folded))[:KEY_LENGTH]


def contained_keys(token_key: str) -> list[str]:
    """The token keys whose records a record with `token_key` contains: its own word set minus
    one or two words (at least MIN_SHARED_WORDS left), each sorted as a token key is."""
    words = token_key.split()
    size = len(words)
    keys: list[str] = []
    for removed in range(1, MAX_EXTRA_WORDS + 1):
        if size - removed < MIN_SHARED_WORDS:
            break
        keys.extend(" ".join(combo) for combo in combinations(words, size - removed))
    return keys


# --- SIRET -----------------------------------------------------------------------------------

_LA_POSTE_SIREN = "356000000"


def normalise_siret(raw: str) -> str:
    """Digits only; raises ValueError with the reason when it is not a valid SIRET."""
    digits = re.sub(r"[\s.-]", "", raw)
    if not digits.isdigit() or len(digits) != 14:
        raise ValueError("must be 14 digits")
    if digits.startswith(_LA_POSTE_SIREN):
        # La Poste's establishments use a digit sum instead of the Luhn key.
        if sum(int(d) for d in digits) % 5 != 0:
            raise ValueError("is not a valid SIRET (check digit)")
        return digits
    if not luhn_valid(digits):
        raise ValueError("is not a valid SIRET (check digit)")
    return digits


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    """The prefix followed by the digit that makes it pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(prefix)):
        value = int(char)
        if index % 2 == 0:  # doubled once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return prefix + str((10 - total % 10) % 10)
