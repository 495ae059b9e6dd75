# ruff: noqa: RUF002, RUF003 (look-alike letters are the subject of this module)
"""Names compared as people read them: the one rule every service applies to its unique names.

Two names are the same name when a person reading them cannot tell them apart:

- **compatibility forms** are the letters they stand for (NFKC): full-width "Ｇｒｏｕｐｅ" is
  "Groupe", the ligature "ﬁ" is "fi", a decomposed "é" (e + U+0301) is the composed one;
- **case** does not count (full case folding: "STRASSE" and "straße" are one name);
- **invisible characters** do not count: Unicode's default-ignorable code points (zero-width
  space and joiners, soft hyphen, bidi marks, variation selectors…) are removed;
- **spacing** does not count: "Groupe\u200bA" shows as "GroupeA", "Groupe A" reads the same
  aloud, and a run of spaces or a no-break space changes nothing a reader sees.

`name_key` is that comparison key. Services store it beside the name, with the uniqueness
constraint on the key (the database settles races), and look names up by it.

A name that **mixes scripts in a confusable way** is refused outright (UTS #39, mixed-script
confusables): when it uses letters of two or more scripts (Common and Inherited characters such
as digits, punctuation and accents aside) and one of its letters looks like a letter of another
script it also uses, as the Cyrillic "о" in "Grоupe" looks like the Latin "o". Letters of one
script throughout are accepted in every script; so are mixes without look-alikes (Latin with
Han, Arabic or Hebrew). `confusable_mix` says which letter and why; the data are Unicode's
confusables and scripts, from the `confusable-homoglyphs` package (loaded on first use).

Known limit: a name written wholly in another script that looks like a Latin one (all-Cyrillic
"РАСЕ" beside Latin "PACE") is accepted; comparing UTS #39 skeletons would catch it, at the
price of also merging legitimate names ("Lot 1" and "Lot l").
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

import regex

from services.kit.errors import Validator

# Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt).
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
_NEUTRAL = frozenset({"COMMON", "INHERITED"})


def name_key(name: str) -> str:
    """The form two names are compared in: default-ignorables removed, NFKC, case folded
    (NFKC again: folding can undo it), spacing removed."""
    visible = _IGNORABLE.sub("", name)
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold())
    return "".join(folded.split())


@dataclass(frozen=True)
class Confusable:
    """A letter of the name that looks like a letter of another script the name uses."""

    character: str
    script: str
    looks_like: str
    other_script: str

    def describe(self) -> str:
        return (
            f"mixes scripts that look alike: {self.character!r} ({self.script.title()}) looks "
            f"like {self.looks_like!r} ({self.other_script.title()}); write the name in one "
            "script"
        )


@functools.cache
def _data() -> tuple[Any, Any]:
    """Unicode's confusables and scripts, loaded on first use (not at import)."""
    from confusable_homoglyphs import categories, confusables

    return categories.alias, confusables.confusables_data


def confusable_mix(name: str) -> Confusable | None:
    """The first letter that makes `name` a mixed-script confusable (UTS #39), or None."""
    script_of, homoglyphs = _data()
    text = unicodedata.normalize("NFKC", _IGNORABLE.sub("", name))
    scripts = {script_of(char) for char in text} - _NEUTRAL
    if len(scripts) < 2:
        return None
    count = Counter(script_of(char) for char in text)
    # The rarer script first: in "Grоupe" the odd one out is the Cyrillic "о", not the "G".
    for char in sorted(dict.fromkeys(text), key=lambda c: count[script_of(c)]):
        own = script_of(char)
        if own in _NEUTRAL:
            continue
        for glyph in homoglyphs.get(char) or ():
            looks_like: str = glyph["c"]
            theirs = {script_of(c) for c in looks_like} - _NEUTRAL
            if len(theirs) == 1 and (other := next(iter(theirs))) != own and other in scripts:
                return Confusable(char, own, looks_like, other)
    return None


def check_name(v: Validator, field: str, name: str) -> str:
    """Records a violation of `field` when the name mixes scripts confusably (code
    `mixed_script`: a rule JSON Schema cannot state, so the gateway answers 422); answers its
    key. (Length, presence and control characters stay each service's own checks.)"""
    if found := confusable_mix(name):
        v.check(False, field, found.describe(), code="mixed_script")
    return name_key(name)
