"""Categories, their answers and deflection: the support servicer's methods for them."""

from __future__ import annotations

from collections.abc import Iterable

from guichet.support.v1 import support_pb2 as pb

from services.kit.auth import current_principal
from services.support.domain.categories import (
    FaqInput,
    FaqTranslation,
    NameTranslation,
    create_category,
    list_categories,
    record_deflection,
    update_category,
    view_category,
)
from services.support.rpc.base import Context, ServicerBase
from services.support.rpc.protos import AUDIENCE_IN, category_to_proto, enum_in


class CategoryMethods(ServicerBase):
    """CreateCategory … RecordDeflection."""

    async def CreateCategory(
        self, request: pb.CreateCategoryRequest, context: Context
    ) -> pb.CreateCategoryResponse:
        async with self._sessions.begin() as session:
            view = await create_category(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                code=request.code,
                name=request.name,
                audience=enum_in(AUDIENCE_IN, request.audience),
                position=request.position,
                entries=[faq_input(e) for e in request.entries],
                translations=name_translations(request.translations),
            )
        return pb.CreateCategoryResponse(category=category_to_proto(view))

    async def UpdateCategory(
        self, request: pb.UpdateCategoryRequest, context: Context
    ) -> pb.UpdateCategoryResponse:
        async with self._sessions.begin() as session:
            view = await update_category(
                session=session,
                actor=current_principal(),
                category_id=request.category_id,
                name=request.name,
                position=request.position,
                entries=[faq_input(e) for e in request.entries],
                translations=name_translations(request.translations),
            )
        return pb.UpdateCategoryResponse(category=category_to_proto(view))

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        async with self._sessions.begin() as session:
            views = await list_categories(
                session=session,
                actor=current_principal(),
                audience=enum_in(AUDIENCE_IN, request.audience),
            )
        return pb.ListCategoriesResponse(categories=[category_to_proto(v) for v in views])

    async def ViewCategory(
        self, request: pb.ViewCategoryRequest, context: Context
    ) -> pb.ViewCategoryResponse:
        async with self._sessions.begin() as session:
            view, seen = await view_category(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                category_id=request.category_id,
            )
        return pb.ViewCategoryResponse(category=category_to_proto(view), view_id=str(seen.id))

    async def RecordDeflection(
        self, request: pb.RecordDeflectionRequest, context: Context
    ) -> pb.RecordDeflectionResponse:
        async with self._sessions.begin() as session:
            await record_deflection(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                view_id=request.view_id,
            )
        return pb.RecordDeflectionResponse()


def faq_input(entry: pb.FaqEntryInput) -> FaqInput:
    return FaqInput(
        entry.question,
        entry.answer,
        [FaqTranslation(t.locale, t.question, t.answer) for t in entry.translations],
    )


def name_translations(
    translations: Iterable[pb.CategoryTranslation],
) -> list[NameTranslation]:
    return [NameTranslation(t.locale, t.name) for t in translations]
