"""Duplicate detection over the keys stored with each client record: grouping, never O(n²).

* **certain**: records with the same `name_key` (identical names once accents, case, punctuation
  and spacing are set aside) — one dict keyed by `name_key`.
* **probable**: records whose significant words contain all of another record's words, with at
  most `MAX_EXTRA_WORDS` more ("Mairie de Toulon" / "Mairie de Toulon Ouest"), or the same words
  in another order or form ("SARL Dupont" / "Dupont"). Grouped by the shared word set (the
  group's *core*): the records whose `token_key` is the core, plus every record that extends it.
  Each record looks up the few word sets it contains (its own minus one or two words, see
  `normalise.contained_keys`) in a dict of existing token keys: O(n·C(k, 2)) for names of k words.

A probable *pair* always includes a core record: two names that each add a different word to a
shared group ("Club de foot de Toulon" / "Club de foot de Lyon" share "club foot") are not paired,
which keeps different organisations of the same kind apart. Pairs are unique by construction: a
pair (core, extension) belongs to the core's group only.

* **probable, typo**: the same words but one, which differs by a single slip (a letter added,
  dropped, replaced, or two neighbours swapped: "Lycée Victor Hugo" / "Lycée Victor Hgo"), with
  at least one other word shared — and the slipped spelling is *rare* in the association's
  records while the other is common. Without that test, real names one letter apart ("Lyon" /
  "Laon", "Renard" / "Ménard") would flood the list. Candidates come from a dict keyed by the
  other words, so only the few rare words are compared, each with a handful of candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.membership.domain.normalise import MAX_EXTRA_WORDS, MIN_SHARED_WORDS, contained_keys

Id = TypeVar("Id")

TYPO_MIN_LENGTH = 4
# A slip makes a rare spelling of a common word: "hgo" (once) next to "hugo" (many times). Two
# common words one letter apart ("Lyon" / "Laon", "Renard" / "Ménard") are different names.
TYPO_MAX_COUNT = 2
TYPO_MIN_COMMON_COUNT = 3


# (id, name_key, token_key): plain tuples, as the database driver hands them over.
KeyedRecord = tuple[Id, str, str]


@dataclass(frozen=True)
class CertainGroup(Generic[Id]):
    key: str
    ids: list[Id]

    @property
    def pairs(self) -> int:
        return len(self.ids) * (len(self.ids) - 1) // 2


@dataclass(frozen=True)
class ProbableGroup(Generic[Id]):
    """Records sharing a group of words: `core` holds exactly those words, `extended` more.

    A typo group (`typo=True`) pairs each `core` record (one spelling) with each `extended` one
    (the other spelling) only: pairs within one spelling belong to that spelling's own group.
    """

    key: str
    core: list[Id]
    extended: list[Id]
    # Pairs of core records that are already certain duplicates (not counted again).
    certain_core_pairs: int = 0
    typo: bool = False

    @property
    def ids(self) -> list[Id]:
        return [*self.core, *self.extended]

    @property
    def pairs(self) -> int:
        core = len(self.core)
        across = core * len(self.extended)
        if self.typo:
            return across
        return core * (core - 1) // 2 - self.certain_core_pairs + across


@dataclass
class DuplicateReport(Generic[Id]):
    records: int
    certain: list[CertainGroup[Id]] = field(default_factory=list)
    probable: list[ProbableGroup[Id]] = field(default_factory=list)

    @property
    def certain_pairs(self) -> int:
        return sum(group.pairs for group in self.certain)

    @property
    def probable_pairs(self) -> int:
        return sum(group.pairs for group in self.probable)


def find_duplicates(records: Iterable[KeyedRecord[Id]]) -> DuplicateReport[Id]:
    """Every certain and probable group among `records`, each list sorted by key."""
    by_name: dict[str, list[Id]] = {}
    by_tokens: dict[str, list[KeyedRecord[Id]]] = {}
    count = 0
    for record in records:
        count += 1
        named = by_name.get(record[1])
        if named is None:
            by_name[record[1]] = [record[0]]
        else:
            named.append(record[0])
        if record[2]:
            holders = by_tokens.get(record[2])
            if holders is None:
                by_tokens[record[2]] = [record]
            else:
                holders.append(record)

    extended: dict[str, list[Id]] = {}
    for token_key, holders in by_tokens.items():
        if token_key.count(" ") < MIN_SHARED_WORDS:  # too few words to contain another set
            continue
        for contained in contained_keys(token_key):
            if contained in by_tokens:
                extended.setdefault(contained, []).extend(holder[0] for holder in holders)

    report: DuplicateReport[Id] = DuplicateReport(records=count)
    for name_key in sorted(key for key, ids in by_name.items() if len(ids) > 1):
        report.certain.append(CertainGroup(name_key, by_name[name_key]))
    for token_key, core in by_tokens.items():
        more = extended.get(token_key)
        if more is None and len(core) < 2:
            continue
        group = ProbableGroup(
            token_key, [r[0] for r in core], more or [], _pairs_within_names(core)
        )
        if group.pairs > 0:
            report.probable.append(group)
    for first, second, key in _typo_matches(by_tokens):
        report.probable.append(
            ProbableGroup(
                key,
                [r[0] for r in by_tokens[first]],
                [r[0] for r in by_tokens[second]],
                typo=True,
            )
        )
    report.probable.sort(key=lambda group: group.key)
    return report


def _typo_matches(by_tokens: dict[str, list[KeyedRecord[Id]]]) -> list[tuple[str, str, str]]:
    """(token key, token key, group key) for word sets one slip apart, the slip being rare.

    Only rare words are looked at: for each, the common words one slip away come from an index of
    the common vocabulary by single-letter deletions (a slip leaves a deletion in common), and the
    word set with the common word in its place is looked up among the existing token keys."""
    counts: dict[str, int] = {}
    for token_key, holders in by_tokens.items():
        for word in token_key.split():
            counts[word] = counts.get(word, 0) + len(holders)
    deletions: dict[str, list[str]] = {}
    for word, count in counts.items():
        if count >= TYPO_MIN_COMMON_COUNT and len(word) >= TYPO_MIN_LENGTH - 1 and word.isalpha():
            for variant in _deletions(word):
                deletions.setdefault(variant, []).append(word)
    found: dict[tuple[str, str], str] = {}
    for token_key in by_tokens:
        words = token_key.split()
        if len(words) < 2:
            continue
        for index, word in enumerate(words):
            if counts[word] > TYPO_MAX_COUNT or len(word) < TYPO_MIN_LENGTH - 1:
                continue
            if not word.isalpha():
                continue
            others = words[:index] + words[index + 1 :]
            candidates = {
                common for variant in _deletions(word) for common in deletions.get(variant, ())
            }
            for common in candidates:
                if common in others or max(len(word), len(common)) < TYPO_MIN_LENGTH:
                    continue
                if not one_slip(word, common):
                    continue
                other_key = " ".join(sorted([*others, common]))
                if other_key in by_tokens:
                    rest = " ".join(others)
                    found.setdefault((other_key, token_key), f"{rest} ~{common}/{word}")
    return [(a, b, key) for (a, b), key in found.items()]


def _deletions(word: str) -> set[str]:
    """The word and every word one letter shorter: two words one slip apart share one."""
    return {word, *(word[:i] + word[i + 1 :] for i in range(len(word)))}


def one_slip(a: str, b: str) -> bool:
    """True when `b` is `a` with one letter added, dropped, replaced, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(differ) == 1:
            return True
        return (
            len(differ) == 2
            and differ[1] == differ[0] + 1
            and a[differ[0]] == b[differ[1]]
            and a[differ[1]] == b[differ[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    for i, (x, y) in enumerate(zip(short, long, strict=False)):
        if x != y:
            return short[i:] == long[i + 1 :]
    return True


def _pairs_within_names(core: Sequence[KeyedRecord[Id]]) -> int:
    if len(core) < 2:
        return 0
    sizes: dict[str, int] = {}
    for record in core:
        sizes[record[1]] = sizes.get(record[1], 0) + 1
    return sum(size * (size - 1) // 2 for size in sizes.values())


def certain_pairs(report: DuplicateReport[Id]) -> Iterator[tuple[Id, Id]]:
    for group in report.certain:
        ids = group.ids
        for i, first in enumerate(ids):
            for second in ids[i + 1 :]:
                yield first, second


def probable_pairs(
    report: DuplicateReport[Id], name_key_of: dict[Id, str]
) -> Iterator[tuple[Id, Id]]:
    """The probable pairs one by one (for measuring); `name_key_of` tells certain pairs apart."""
    for group in report.probable:
        core = group.core
        for i, first in enumerate(core):
            if not group.typo:
                for second in core[i + 1 :]:
                    if name_key_of[first] != name_key_of[second]:
                        yield first, second
            for other in group.extended:
                yield first, other


def word_counts(records: Iterable[KeyedRecord[Id]]) -> dict[str, int]:
    """How many records hold each significant word (what "rare" means for slips)."""
    counts: dict[str, int] = {}
    for _, _, token_key in records:
        for word in token_key.split():
            counts[word] = counts.get(word, 0) + 1
    return counts


def pair_kind(
    first: tuple[str, str], second: tuple[str, str], counts: dict[str, int]
) -> str | None:
    """The definition, one pair at a time ((name_key, token_key) each): "certain", "probable" or
    None. `find_duplicates` finds exactly the pairs this accepts, without comparing every pair;
    the tests and the benchmark check one against the other."""
    if first[0] == second[0]:
        return "certain"
    words_a, words_b = set(first[1].split()), set(second[1].split())
    if not words_a or not words_b:
        return None
    small, large = (words_a, words_b) if len(words_a) <= len(words_b) else (words_b, words_a)
    if small <= large and len(large) - len(small) <= MAX_EXTRA_WORDS:
        if small == large or len(small) >= MIN_SHARED_WORDS:
            return "probable"
        return None
    if len(words_a) == len(words_b) >= 2:
        only_a, only_b = words_a - words_b, words_b - words_a
        if len(only_a) == 1 and len(only_b) == 1:
            (a,), (b,) = only_a, only_b
            if _slip_pair(a, b, counts) or _slip_pair(b, a, counts):
                return "probable"
    return None


def _slip_pair(rare: str, common: str, counts: dict[str, int]) -> bool:
    return (
        counts.get(rare, 0) <= TYPO_MAX_COUNT
        and counts.get(common, 0) >= TYPO_MIN_COMMON_COUNT
        and len(rare) >= TYPO_MIN_LENGTH - 1
        and len(common) >= TYPO_MIN_LENGTH - 1
        and rare.isalpha()
        and common.isalpha()
        and max(len(rare), len(common)) >= TYPO_MIN_LENGTH
        and one_slip(rare, common)
    )
