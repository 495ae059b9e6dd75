"""Realistic client records with known duplicates: the demo data, the tests' and the benchmark's
ground truth.

Each *entity* (an organisation) is written once or several times, the way requesters and local
managers type names when they do not quote their client number: copied as is (legacy records),
in capitals, without accents or hyphens, with stop words or the legal form moved or dropped,
abbreviated ("St" for "Saint"), with one or two words added ("Ouest", "Services techniques"), or
with a typo. A few distinct entities are deliberately confusable (one's name is another's plus
a word, like "Mairie de Paris" and "Mairie de Paris 15"), so precision is measured, not assumed.

Deterministic for a given seed. `truth_pairs` gives every pair of records of the same entity.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from string import Formatter
from typing import TypeVar

from services.membership.domain.normalise import contained_keys, luhn_complete, name_keys
from services.membership.sample_words import (
    ADJECTIVES,
    BUSINESS_TEMPLATES,
    CITIES,
    CITY_TEMPLATES,
    CONFUSABLE_SUFFIXES,
    EXTRA_PAIRS,
    EXTRA_WORDS,
    FIRST_NAMES,
    LEGAL,
    PEOPLE,
    SAINTES,
    SAINTS,
    SPORTS,
    SURNAMES,
    THEMES,
    TRADES,
)

# Share of each way of writing a duplicate (the entity's first record is written normally).
VARIANTS: tuple[tuple[str, float], ...] = (
    ("copy", 0.20),
    ("case", 0.15),
    ("accents", 0.15),
    ("words", 0.18),
    ("abbreviation", 0.05),
    ("extra_word", 0.15),
    ("extra_words", 0.05),
    ("typo", 0.07),
)
# How many records an entity has: 1 (most) to 5.
RECORDS_PER_ENTITY = ((1, 0.74), (2, 0.18), (3, 0.05), (4, 0.02), (5, 0.01))
CONFUSABLE_SHARE = 0.01
SIRET_SHARE = 0.4


K = TypeVar("K")


@dataclass(frozen=True)
class SampleRecord:
    external_ref: str
    company_name: str
    siret: str
    email: str
    contact_name: str
    entity: int
    variant: str


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


_VOCABULARY: dict[str, Sequence[str]] = {
    "city": CITIES,
    "person": PEOPLE,
    "saint": SAINTS,
    "sainte": SAINTES,
    "sport": SPORTS,
    "theme": THEMES,
    "adjective": ADJECTIVES,
    "trade": TRADES,
    "surname": SURNAMES,
    "surname2": SURNAMES,
    "legal": LEGAL,
}
_FIELDS = {
    template: [name for _, name, _, _ in Formatter().parse(template) if name]
    for template in (*CITY_TEMPLATES, *BUSINESS_TEMPLATES)
}


class _Names:
    """Draws canonical names whose word sets never contain one another (unless confusable)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.token_keys: set[str] = set()
        self.contained: set[str] = set()

    def _draw(self) -> str:
        rng = self.rng
        templates = CITY_TEMPLATES if rng.random() < 0.6 else BUSINESS_TEMPLATES
        template = rng.choice(templates)
        values = {name: rng.choice(_VOCABULARY[name]) for name in _FIELDS[template]}
        return template.format(**values)

    def _fits(self, token_key: str) -> bool:
        if not token_key or token_key in self.token_keys or token_key in self.contained:
            return False
        return not any(key in self.token_keys for key in contained_keys(token_key))

    def _accept(self, token_key: str) -> None:
        self.token_keys.add(token_key)
        self.contained.update(contained_keys(token_key))

    def new(self) -> str:
        while True:
            name = self._draw()
            _, token_key = name_keys(name)
            if self._fits(token_key):
                self._accept(token_key)
                return name

    def confusable(self, base: str) -> str | None:
        """A different organisation named like `base` plus one word."""
        for suffix in self.rng.sample(CONFUSABLE_SUFFIXES, len(CONFUSABLE_SUFFIXES)):
            name = f"{base} {suffix}"
            _, token_key = name_keys(name)
            if token_key not in self.token_keys:
                self.token_keys.add(token_key)
                return name
        return None


def _typo(name: str, rng: random.Random) -> str:
    words = name.split()
    index = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[index]
    if len(word) < 4:
        return name + "e"
    position = rng.randrange(1, len(word) - 1)
    if rng.random() < 0.5:
        word = word[:position] + word[position + 1 :]
    else:
        chars = list(word)
        chars[position], chars[position - 1] = chars[position - 1], chars[position]
        word = "".join(chars)
    words[index] = word
    return " ".join(words)


def _words(name: str, rng: random.Random) -> str:
    """Same significant words: stop words dropped, legal form moved or added, order changed."""
    words = name.split()
    legal = [w for w in words if w in LEGAL]
    if legal:
        rest = [w for w in words if w not in LEGAL]
        return " ".join([legal[0], *rest])
    choice = rng.random()
    dropped = [w for w in words if w.lower() not in {"de", "des", "du", "la", "le", "les", "et"}]
    if choice < 0.5 and len(dropped) < len(words):
        return " ".join(dropped)
    if " de " in name:
        head, tail = name.split(" de ", 1)
        return f"{tail} ({head})"
    return f"{name} {rng.choice(LEGAL)}"


def _abbreviation(name: str, rng: random.Random) -> str:
    for full, short in (("Sainte-", "Ste "), ("Saint-", "St "), ("Association", "Asso")):
        if full in name:
            return name.replace(full, short)
    return _words(name, rng)


def write_variant(name: str, variant: str, rng: random.Random) -> str:
    if variant == "copy":
        return name
    if variant == "case":
        return name.upper() if rng.random() < 0.6 else name.lower()
    if variant == "accents":
        bare = _strip_accents(name)
        return bare.replace("-", " ").replace("'", " ") if rng.random() < 0.7 else bare + "."
    if variant == "words":
        return _words(name, rng)
    if variant == "abbreviation":
        return _abbreviation(name, rng)
    if variant == "extra_word":
        return f"{name} {rng.choice(EXTRA_WORDS)}"
    if variant == "extra_words":
        return f"{name} - {rng.choice(EXTRA_PAIRS)}"
    if variant == "typo":
        return _typo(name, rng)
    raise ValueError(variant)


def _pick(rng: random.Random, weighted: Iterable[tuple[object, float]]) -> object:
    items = list(weighted)
    return rng.choices([item for item, _ in items], [weight for _, weight in items])[0]


def generate(count: int, *, seed: int = 2026, ref_prefix: str = "sample") -> list[SampleRecord]:
    """`count` records (shuffled) of entities written once or more, with known duplicates."""
    rng = random.Random(seed)
    names = _Names(rng)
    records: list[SampleRecord] = []
    entity = 0
    siret_serial = rng.randrange(100_000, 200_000)
    while len(records) < count:
        entity += 1
        canonical = names.new()
        if rng.random() < CONFUSABLE_SHARE:
            twin = names.confusable(canonical)
            if twin is not None:
                records.append(_record(rng, twin, entity, "confusable", None))
                entity += 1
        siret = None
        if rng.random() < SIRET_SHARE:
            siret_serial += 1
            siren = luhn_complete(f"{siret_serial:08d}")
            siret = luhn_complete(f"{siren}0001")
        size = int(_pick(rng, RECORDS_PER_ENTITY))  # type: ignore[call-overload]
        records.append(_record(rng, canonical, entity, "first", siret))
        for _ in range(size - 1):
            variant = str(_pick(rng, VARIANTS))
            written = write_variant(canonical, variant, rng)
            kept_siret = siret if rng.random() < 0.5 else None
            records.append(_record(rng, written, entity, variant, kept_siret))
    records = records[:count]
    rng.shuffle(records)
    return [
        SampleRecord(
            external_ref=f"{ref_prefix}-{index:06d}",
            company_name=r.company_name,
            siret=r.siret,
            email=r.email,
            contact_name=r.contact_name,
            entity=r.entity,
            variant=r.variant,
        )
        for index, r in enumerate(records, start=1)
    ]


def _record(
    rng: random.Random, name: str, entity: int, variant: str, siret: str | None
) -> SampleRecord:
    first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
    return SampleRecord(
        external_ref="",
        company_name=name,
        siret=siret or "",
        email=f"contact.{entity}@client.example.fr",
        contact_name=f"{first} {last}",
        entity=entity,
        variant=variant,
    )


def truth_pairs(records: Iterable[tuple[K, int]]) -> set[frozenset[K]]:
    """Every pair of ids whose records belong to the same entity; input: (id, entity)."""
    by_entity: dict[int, list[K]] = {}
    for record_id, entity in records:
        by_entity.setdefault(entity, []).append(record_id)
    return {
        frozenset(pair)
        for ids in by_entity.values()
        if len(ids) > 1
        for pair in combinations(ids, 2)
    }


@dataclass(frozen=True)
class Score:
    predicted: int
    truth: int
    true_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.truth if self.truth else 1.0


def score(predicted: Iterable[Iterable[K]], truth: set[frozenset[K]]) -> Score:
    found = {frozenset(pair) for pair in predicted}
    return Score(len(found), len(truth), len(found & truth))
