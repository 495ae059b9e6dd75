"""Categories and their questions and answers (FAQ), and deflection: a view of a category's
answers counts as a deflection unless a ticket follows it within the window.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    Validator,
)
from services.kit.i18n import MAX_TRANSLATIONS, check_tag
from services.support.domain.common import (
    CODE_PATTERN,
    TEXT_MAX,
    check_text,
    flush_unique,
    require_admin,
    require_user,
    uuid_or_raise,
)
from services.support.models import Audience, Category, FaqEntry, FaqView, Ticket
from services.support.settings import SupportSettings


@dataclass(frozen=True)
class FaqTranslation:
    """A question and its answer in another language (a BCP 47 tag: "pt-BR")."""

    locale: str
    question: str
    answer: str


@dataclass(frozen=True)
class FaqInput:
    question: str
    answer: str
    translations: Sequence[FaqTranslation] = ()


@dataclass(frozen=True)
class NameTranslation:
    """A category's name in another language."""

    locale: str
    name: str


@dataclass(frozen=True)
class CategoryView:
    category: Category
    entries: list[FaqEntry]


def _check_locales(v: Validator, field: str, locales: Sequence[str]) -> None:
    """Each translation's language: a well-formed tag, once, and a bounded number of them."""
    v.check(
        len(locales) <= MAX_TRANSLATIONS,
        field,
        f"must hold at most {MAX_TRANSLATIONS} translations",
        code="too_long",
    )
    for index, locale in enumerate(locales):
        check_tag(v, f"{field}[{index}].locale", locale)
        v.check(
            locale not in locales[:index],
            f"{field}[{index}].locale",
            "is listed twice",
            code="duplicate_language",
        )


def _check_entries(v: Validator, entries: Sequence[FaqInput]) -> None:
    for index, entry in enumerate(entries):
        check_text(v, f"entries[{index}].question", entry.question, 500)
        check_text(v, f"entries[{index}].answer", entry.answer, TEXT_MAX, lines=True)
        where = f"entries[{index}].translations"
        _check_locales(v, where, [t.locale for t in entry.translations])
        for number, text in enumerate(entry.translations):
            check_text(v, f"{where}[{number}].question", text.question, 500)
            check_text(v, f"{where}[{number}].answer", text.answer, TEXT_MAX, lines=True)


def _check_names(v: Validator, translations: Sequence[NameTranslation]) -> None:
    _check_locales(v, "translations", [t.locale for t in translations])
    for index, text in enumerate(translations):
        check_text(v, f"translations[{index}].name", text.name, 100)


def _names(translations: Sequence[NameTranslation]) -> dict[str, dict[str, str]]:
    return {t.locale: {"name": t.name.strip()} for t in translations}


def _audience(v: Validator, audience: str) -> Audience | None:
    if audience not in {a.value for a in Audience}:
        v.check(False, "audience", "must be customer or partner")
        return None
    return Audience(audience)


async def _category_view(session: AsyncSession, category: Category) -> CategoryView:
    entries = await session.scalars(
        select(FaqEntry).where(FaqEntry.category_id == category.id).order_by(FaqEntry.position)
    )
    return CategoryView(category, list(entries))


def _replace_entries(
    session: AsyncSession, category_id: uuid.UUID, entries: Sequence[FaqInput]
) -> None:
    for position, entry in enumerate(entries):
        session.add(
            FaqEntry(
                id=uuid.uuid4(),
                category_id=category_id,
                position=position,
                question=entry.question.strip(),
                answer=entry.answer.strip(),
                translations={
                    t.locale: {"question": t.question.strip(), "answer": t.answer.strip()}
                    for t in entry.translations
                },
            )
        )


async def create_category(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    code: str,
    name: str,
    audience: str,
    position: int,
    entries: Sequence[FaqInput],
    translations: Sequence[NameTranslation] = (),
) -> CategoryView:
    require_admin(actor)
    v = Validator()
    v.require("code", code)
    v.check(
        not code or bool(CODE_PATTERN.match(code)), "code", "must be 1 to 40 of A-Z a-z 0-9 _ -"
    )
    check_text(v, "name", name, 100)
    parsed = _audience(v, audience)
    _check_names(v, translations)
    _check_entries(v, entries)
    v.raise_if_any()
    assert parsed is not None
    category = Category(
        id=uuid.uuid4(),
        code=code,
        name=name.strip(),
        audience=parsed.value,
        position=position,
        created_at=now,
        translations=_names(translations),
    )
    session.add(category)
    await flush_unique(
        session,
        {"uq_categories_code": AlreadyExists("code: is taken", violations=[("code", "is taken")])},
    )
    _replace_entries(session, category.id, entries)
    await session.flush()
    return await _category_view(session, category)


async def update_category(
    *,
    session: AsyncSession,
    actor: Principal | None,
    category_id: str,
    name: str,
    position: int,
    entries: Sequence[FaqInput],
    translations: Sequence[NameTranslation] = (),
) -> CategoryView:
    """Replaces the name, its translations and the answers (with theirs) at once."""
    require_admin(actor)
    category = await session.get(
        Category, uuid_or_raise("category_id", category_id), with_for_update=True
    )
    if category is None:
        raise NotFound("category not found")
    v = Validator()
    check_text(v, "name", name, 100)
    _check_names(v, translations)
    _check_entries(v, entries)
    v.raise_if_any()
    category.name = name.strip()
    category.position = position
    category.translations = _names(translations)
    for entry in await session.scalars(select(FaqEntry).where(FaqEntry.category_id == category.id)):
        await session.delete(entry)
    await session.flush()
    _replace_entries(session, category.id, entries)
    await session.flush()
    return await _category_view(session, category)


async def list_categories(
    *, session: AsyncSession, actor: Principal | None, audience: str
) -> list[CategoryView]:
    """Answers are public to every signed-in user and internal caller; `audience` narrows."""
    if actor is None:
        raise Unauthenticated("authentication required")
    query = select(Category).order_by(Category.audience, Category.position, Category.name)
    if audience:
        v = Validator()
        parsed = _audience(v, audience)
        v.raise_if_any()
        assert parsed is not None
        query = query.where(Category.audience == parsed.value)
    return [await _category_view(session, c) for c in await session.scalars(query)]


async def view_category(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    category_id: str,
) -> tuple[CategoryView, FaqView]:
    """Shows a category's answers and records the view (one per user, category and window)."""
    actor = require_user(actor)
    category = await session.get(Category, uuid_or_raise("category_id", category_id))
    if category is None:
        raise NotFound("category not found")
    window = timedelta(seconds=settings.deflection_window_seconds)
    view = await session.scalar(
        select(FaqView)
        .where(
            FaqView.category_id == category.id,
            FaqView.user_id == actor.subject,
            FaqView.viewed_at > now - window,
            FaqView.ticket_id.is_(None),
        )
        .order_by(FaqView.viewed_at.desc())
        .limit(1)
    )
    if view is None:
        view = FaqView(
            id=uuid.uuid4(), category_id=category.id, user_id=actor.subject, viewed_at=now
        )
        session.add(view)
        await session.flush()
    return await _category_view(session, category), view


async def record_deflection(
    *, session: AsyncSession, actor: Principal | None, now: datetime, view_id: str
) -> FaqView:
    """ "This answered my question": the view counts as a deflection at once."""
    actor = require_user(actor)
    view = await session.get(FaqView, uuid_or_raise("view_id", view_id), with_for_update=True)
    if view is None or view.user_id != actor.subject:
        raise NotFound("view not found")
    if view.ticket_id is not None:
        raise FailedPrecondition(
            "a ticket was opened after this view: it deflected nothing", reason="ticket_opened"
        )
    if view.deflected_at is None:
        view.deflected_at = now
    return view


async def consume_view(
    session: AsyncSession, actor: Principal, view_id: str, category_id: uuid.UUID, ticket: Ticket
) -> None:
    """The user read the answers and still opened a ticket: the view deflected nothing."""
    if not view_id.strip():
        return
    view = await session.get(FaqView, uuid_or_raise("view_id", view_id), with_for_update=True)
    if view is None or view.user_id != actor.subject:
        raise InvalidArgument([("view_id", "is not a view of yours")])
    if view.category_id != category_id:
        raise InvalidArgument([("view_id", "is a view of another category")])
    view.ticket_id = ticket.id
    view.deflected_at = None
