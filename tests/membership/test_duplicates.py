"""Duplicate detection: the name keys, the definition pair by pair, the grouped detection against
brute force, precision and recall on a generated set with known duplicates, and the service's
lists over imported records."""

from __future__ import annotations

import itertools
import random
import uuid

import pytest
from guichet.membership.v1 import membership_pb2 as pb
from sqlalchemy import select

from services.membership.domain import duplicates as dup
from services.membership.domain.normalise import (
    contained_keys,
    fold,
    luhn_complete,
    name_keys,
    normalise_siret,
)
from services.membership.models import ClientRecord
from services.membership.samples import generate, score, truth_pairs
from tests.membership.harness import World
from tests.membership.test_duplicate_candidates import fresh_report

# --- keys ---------------------------------------------------------------------------------------


def test_names_fold_accents_case_punctuation_and_spacing() -> None:
    assert fold("  École  Sainte-Thérèse d'Œuvre. ") == "ecole sainte therese d oeuvre"
    assert fold("MAIRIE DE TOULON") == fold("Mairie de Toulon") == "mairie de toulon"
    assert fold("Клуб Москва") == "клуб москва"  # other scripts are kept, not dropped
    assert name_keys("SARL Dupont & Fils") == ("sarl dupont fils", "dupont fils")
    assert name_keys("Dupont et Fils SAS")[1] == "dupont fils"
    assert name_keys("Paroisse St Jean")[1] == name_keys("Paroisse Saint-Jean")[1]


def test_contained_keys_drop_one_or_two_words_keeping_two() -> None:
    assert contained_keys("mairie toulon") == []
    assert contained_keys("mairie ouest toulon") == [
        "mairie ouest",
        "mairie toulon",
        "ouest toulon",
    ]
    assert len(contained_keys("a b c d")) == 4 + 6


def test_siret_needs_14_digits_and_its_check_digit() -> None:
    valid = luhn_complete(luhn_complete("73282932") + "0001")
    assert normalise_siret(f"{valid[:3]} {valid[3:6]} {valid[6:9]} {valid[9:]}") == valid
    with pytest.raises(ValueError, match="14 digits"):
        normalise_siret("1234")
    with pytest.raises(ValueError, match="check digit"):
        normalise_siret(valid[:-1] + str((int(valid[-1]) + 1) % 10))
    assert normalise_siret("35600000000051")  # La Poste: digit sum, not Luhn


# --- the definition, pair by pair ---------------------------------------------------------------


def kind(a: str, b: str, counts: dict[str, int] | None = None) -> str | None:
    return dup.pair_kind(name_keys(a), name_keys(b), counts or {})


def test_certain_and_probable_as_the_seed_defines_them() -> None:
    assert kind("Mairie de Toulon", "Mairie de Toulon") == "certain"
    assert kind("Mairie de Toulon", "MAIRIE DE TOULON.") == "certain"
    assert kind("Mairie de Toulon", "Mairie de Toulon Ouest") == "probable"
    assert kind("Mairie de Toulon", "Toulon (Mairie de)") == "probable"
    assert kind("Mairie de Toulon", "Mairie de Toulon - Services techniques") == "probable"
    assert kind("Dupont SARL", "SARL Dupont") == "probable"
    # Three words more is no longer the same group; one shared word proves nothing.
    assert kind("Mairie de Toulon", "Mairie de Toulon Ouest Services techniques") is None
    assert kind("Mairie", "Mairie de Toulon") is None
    # Two organisations of the same kind in two towns are not duplicates.
    assert kind("Club de football de Toulon", "Club de football de Lyon") is None


def test_a_slip_counts_only_when_the_spelling_is_rare_and_the_word_common() -> None:
    counts = {"hugo": 40, "victor": 40, "lycee": 200, "toulon": 90, "hgo": 1, "laon": 30}
    counts["lyon"] = 30
    assert kind("Lycée Victor Hugo", "Lycée Victor Hgo", counts) == "probable"
    assert kind("Lycée de Lyon", "Lycée de Laon", counts) is None  # two real towns
    assert dup.one_slip("hugo", "hgo") and dup.one_slip("toulon", "touoln")
    assert not dup.one_slip("toulon", "tolouse")


# --- the grouped detection: same answers as brute force, never O(n^2) ---------------------------


def _rows(count: int, seed: int) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    records = generate(count, seed=seed)
    rows = [(r.external_ref, *name_keys(r.company_name)) for r in records]
    return rows, {r.external_ref: r.entity for r in records}


def _pairs(
    report: dup.DuplicateReport[str], rows: list[tuple[str, str, str]]
) -> set[frozenset[str]]:
    name_key_of = {row[0]: row[1] for row in rows}
    return {
        frozenset(pair)
        for pair in itertools.chain(
            dup.certain_pairs(report), dup.probable_pairs(report, name_key_of)
        )
    }


def test_grouped_detection_finds_exactly_the_pairs_of_brute_force() -> None:
    rows, entity_of = _rows(6_000, seed=3)
    report = dup.find_duplicates(rows)
    found = _pairs(report, rows)
    counts = dup.word_counts(rows)
    # Whole organisations plus random records, so the sample holds many true duplicates.
    rng = random.Random(5)
    by_entity: dict[int, list[tuple[str, str, str]]] = {}
    for row in rows:
        by_entity.setdefault(entity_of[row[0]], []).append(row)
    sample = [row for entity in rng.sample(sorted(by_entity), 600) for row in by_entity[entity]]
    sample += rng.sample(rows, 600)
    sample = list(dict.fromkeys(sample))
    ids = {row[0] for row in sample}
    brute = {
        frozenset((a[0], b[0]))
        for a, b in itertools.combinations(sample, 2)
        if dup.pair_kind((a[1], a[2]), (b[1], b[2]), counts)
    }
    assert len(brute) > 200
    assert brute == {pair for pair in found if pair <= ids}
    # Pair counts in the report agree with the pairs listed.
    assert report.certain_pairs + report.probable_pairs == len(found)


def test_precision_and_recall_on_a_generated_set_with_known_duplicates() -> None:
    rows, entity_of = _rows(20_000, seed=2026)
    report = dup.find_duplicates(rows)
    truth = truth_pairs(entity_of.items())
    overall = score(iter(_pairs(report, rows)), truth)
    certain = score(dup.certain_pairs(report), truth)
    assert overall.precision >= 0.95, overall
    assert overall.recall >= 0.9, overall
    assert certain.precision >= 0.99, certain  # identical names are the same organisation


# --- through the service ------------------------------------------------------------------------


async def test_the_service_lists_every_group_page_by_page(world: World) -> None:
    association = await world.association()
    records = generate(3_000, seed=75, ref_prefix="t")
    for start in range(0, len(records), 1_000):
        await world.stub.ImportClientRecords(
            pb.ImportClientRecordsRequest(
                association_id=association.id,
                records=[
                    pb.ImportedClientRecord(
                        external_ref=r.external_ref,
                        company_name=r.company_name,
                        siret=r.siret,
                        email=r.email,
                        contact_name=r.contact_name,
                    )
                    for r in records[start : start + 1_000]
                ],
            ),
            metadata=world.ops,
        )
    rows = [(r.external_ref, *name_keys(r.company_name)) for r in records]
    expected = dup.find_duplicates(rows)
    await fresh_report(world, association)  # computed in the background after the imports
    groups: list[pb.DuplicateGroup] = []
    token = ""
    while True:
        page = await world.stub.ListDuplicates(
            pb.ListDuplicatesRequest(
                association_id=association.id,
                page={"page_size": 200, "page_token": token},  # type: ignore[arg-type]
            ),
            metadata=association.auth,
        )
        groups += page.groups
        token = page.page.next_page_token
        if not token:
            break
    totals = page.totals
    assert totals.records == 3_000
    assert (totals.certain_groups, totals.certain_pairs) == (
        len(expected.certain),
        expected.certain_pairs,
    )
    assert (totals.probable_groups, totals.probable_pairs) == (
        len(expected.probable),
        expected.probable_pairs,
    )
    assert len(groups) == len(expected.certain) + len(expected.probable)
    assert len({(g.kind, g.key) for g in groups}) == len(groups)  # no group twice
    certain = [g for g in groups if g.kind == pb.DUPLICATE_KIND_CERTAIN]
    assert [g.key for g in certain] == [g.key for g in expected.certain]
    assert all(len({fold(r.company_name) for r in g.records}) == 1 for g in certain)
    only_probable = await world.stub.ListDuplicates(
        pb.ListDuplicatesRequest(association_id=association.id, kind=pb.DUPLICATE_KIND_PROBABLE),
        metadata=association.auth,
    )
    assert {g.kind for g in only_probable.groups} == {pb.DUPLICATE_KIND_PROBABLE}
    # One record's duplicates (the merge screen): exactly its partners in the report's pairs.
    async with world.sessions.begin() as session:
        ids = {
            ref: str(record_id)
            for record_id, ref in await session.execute(
                select(ClientRecord.id, ClientRecord.external_ref).where(
                    ClientRecord.association_id == uuid.UUID(association.id)
                )
            )
        }
    partners: dict[str, set[str]] = {}
    for pair in _pairs(expected, rows):
        a, b = sorted(pair)
        partners.setdefault(a, set()).add(ids[b])
        partners.setdefault(b, set()).add(ids[a])
    slipped = {
        ref for group in expected.probable if group.typo for ref in (*group.core, *group.extended)
    }
    chosen = sorted(slipped)[:5] + random.Random(9).sample(sorted(partners), 25)
    for ref in chosen:
        found = await world.stub.FindDuplicatesOf(
            pb.FindDuplicatesOfRequest(association_id=association.id, record_id=ids[ref]),
            metadata=association.auth,
        )
        assert {c.record.id for c in found.candidates} == partners[ref], ref
