# ruff: noqa: RUF001, RUF003 (look-alike characters are what these tests are about)
"""Names compared as people read them (services/kit/names.py): the comparison key and the
mixed-script look-alikes (UTS #39), with the cases of issue #26."""

from __future__ import annotations

import re

import pytest

from services.kit.errors import Validator
from services.kit.names import check_name, confusable_mix, name_key

SAME_AS_GROUPE_A = [
    "Groupe A",
    "Groupe\u200bA",  # a zero-width space: shows as "GroupeA"
    "Ｇｒｏｕｐｅ Ａ",  # full-width letters and space
    "GROUPE  A",  # case, a double space
    "Groupe\u00a0A",  # a no-break space
    "\u2060Groupe A\u00ad",  # a word joiner and a soft hyphen
    "Groupe A\ufe0f",  # a variation selector
]


@pytest.mark.parametrize("name", SAME_AS_GROUPE_A)
def test_names_people_cannot_tell_apart_have_one_key(name: str) -> None:
    assert name_key(name) == name_key("Groupe A")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Café", "Cafe\u0301"),  # composed and decomposed é
        ("straße", "STRASSE"),  # full case folding
        ("ﬁlms", "films"),  # a ligature
        ("Ⅻ Arrondissement", "XII arrondissement"),  # a compatibility numeral
    ],
)
def test_compatibility_forms_and_case_fold_together(one: str, other: str) -> None:
    assert name_key(one) == name_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Société Générale", "Societe Generale"),  # accents are letters people read
        ("Associação São João", "Associacao Sao Joao"),
        ("Groupe 1", "Groupe 2"),
        ("Groupe A", "Groupe B"),
    ],
)
def test_different_names_stay_different(one: str, other: str) -> None:
    assert name_key(one) != name_key(other)


@pytest.mark.parametrize(
    "name",
    [
        "Société Générale",
        "Associação São João",
        "Coopérative de l’Étoile",
        "Müller & Söhne",
        "Nguyễn Văn A",
        "Группа поддержки",  # one script throughout, whatever it is
        "Ελληνική Εταιρεία",
        "Société 東京",  # scripts mixed without look-alikes
        "الرياض",
        "Garage 2000",
    ],
)
def test_legitimate_names_in_one_script_or_without_look_alikes_pass(name: str) -> None:
    assert confusable_mix(name) is None
    v = Validator()
    check_name(v, "name", name)
    assert v.violations == []


@pytest.mark.parametrize(
    ("name", "odd_one"),
    [
        ("Gr\u043eupe A", "\u043e"),  # a Cyrillic о among Latin letters
        ("Groupe \u0410", "\u0410"),  # a Cyrillic А as the last word
        ("\u0420aris", "\u0420"),  # Cyrillic Р
        ("\u03a1aris", "\u03a1"),  # Greek Ρ
        ("Ｇｒ\u043eupe", "\u043e"),  # full width does not hide it
    ],
)
def test_cyrillic_or_greek_look_alikes_among_latin_letters_are_refused(
    name: str, odd_one: str
) -> None:
    found = confusable_mix(name)
    assert found is not None and found.character == odd_one
    v = Validator()
    check_name(v, "name", name)
    [(field, why)] = v.violations
    assert field == "name"
    assert re.search(r"looks like '.+' \(Latin\)", why), why


def test_usernames_keep_their_rule_lower_is_the_key() -> None:
    """Usernames are ASCII letters, digits, '.', '_' and '-' (identity): for them the key is
    exactly `lower()`, which identity's unique index on lower(username) already compares."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
    assert name_key(alphabet) == alphabet.lower()
    assert name_key("DUPONT.jean") == name_key("dupont.jean")
