"""The support team's administration of the FAQ: categories with their questions and answers,
which customers read before any ticket form (the deflection the SLA report measures)."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import (
    Category,
    CategoryAudience,
    CategoryBody,
    CategoryTranslation,
    CategoryUpdateBody,
    FaqEntryBody,
    FaqEntryTranslation,
)
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.forms import TypedInputs
from web.i18n import HTML_LANG, LANGUAGE_NAMES, LOCALES, N_
from web.pages import form_values, redirect
from web.portals.support import _render
from web.problems import FormState
from web.session import Visitor

router: APIRouter = APIRouter()


# --- The FAQ's categories (ops admin): what customers read before any ticket -----------------

_BLANK_ROWS = 2


def _entry_rows(values: dict[str, str]) -> int:
    """How many question/answer rows the form shows: those typed, plus blank ones to add."""
    typed = [k for k in values if k.startswith("entries[") and k.endswith("].question")]
    return len(typed) + _BLANK_ROWS


# The languages a category and its answers may be translated into (BCP 47 tags).
LANGUAGES = tuple(HTML_LANG[locale] for locale in LOCALES)


def _entry_translations(values: dict[str, str], row: str) -> list[FaqEntryTranslation]:
    """A row's translations typed in the form (`entries[i].translations.<tag>.question`)."""
    found: list[FaqEntryTranslation] = []
    for tag in LANGUAGES:
        question = values.get(f"{row}.translations.{tag}.question", "").strip()
        answer = values.get(f"{row}.translations.{tag}.answer", "").strip()
        if question or answer:
            found.append({"locale": tag, "question": question, "answer": answer})
    return found


def _entries_from(values: dict[str, str]) -> tuple[list[FaqEntryBody], dict[str, str]]:
    """The filled rows, renumbered without the blank ones: the API's `entries[i]` errors then
    name the row the form shows again at index i."""
    entries: list[FaqEntryBody] = []
    index = 0
    while f"entries[{index}].question" in values or f"entries[{index}].answer" in values:
        row = f"entries[{index}]"
        question = values.get(f"{row}.question", "").strip()
        answer = values.get(f"{row}.answer", "").strip()
        translations = _entry_translations(values, row)
        if question or answer or translations:
            entries.append({"question": question, "answer": answer, "translations": translations})
        index += 1
    kept = {k: v for k, v in values.items() if not k.startswith("entries[")}
    for position, entry in enumerate(entries):
        _entry_values(kept, position, entry)
    return entries, kept


def _entry_values(values: dict[str, str], position: int, entry: FaqEntryBody) -> None:
    row = f"entries[{position}]"
    values[f"{row}.question"] = entry["question"]
    values[f"{row}.answer"] = entry["answer"]
    for translation in entry.get("translations") or ():
        where = f"{row}.translations.{translation['locale']}"
        values[f"{where}.question"] = translation["question"]
        values[f"{where}.answer"] = translation["answer"]


def _name_translations(values: dict[str, str]) -> list[CategoryTranslation]:
    return [
        {"locale": tag, "name": values[f"translations.{tag}.name"].strip()}
        for tag in LANGUAGES
        if values.get(f"translations.{tag}.name", "").strip()
    ]


def _translation_fields(
    names: list[CategoryTranslation], entries: list[FaqEntryBody]
) -> dict[str, str]:
    """The API's paths of translated fields (`translations[0].name`) → the form's inputs
    (`translations.pt-BR.name`), so that a refusal shows beside the right input."""
    fields = {f"translations[{i}]": f"translations.{n['locale']}" for i, n in enumerate(names)}
    for row, entry in enumerate(entries):
        for i, translation in enumerate(entry.get("translations") or ()):
            fields[f"entries[{row}].translations[{i}]"] = (
                f"entries[{row}].translations.{translation['locale']}"
            )
    return fields


def _refused(
    visitor: Visitor,
    values: dict[str, str],
    problem: ApiProblem,
    names: list[CategoryTranslation],
    entries: list[FaqEntryBody],
) -> FormState:
    form = FormState.refused(visitor.locale, values, problem, {})
    renamed = _translation_fields(names, entries)
    errors: dict[str, str] = {}
    for name, message in form.errors.items():
        for api_path, input_path in renamed.items():
            if name.startswith(api_path + "."):
                name = input_path + name.removeprefix(api_path)
                break
        errors.setdefault(name, message)
    form.errors = errors
    return form


def _category_values(category: Category) -> dict[str, str]:
    values = {
        "code": category["code"],
        "name": category["name"],
        "audience": category["audience"],
        "position": str(category["position"]),
    }
    for translation in category.get("translations") or ():
        values[f"translations.{translation['locale']}.name"] = translation["name"]
    for index, entry in enumerate(category["entries"]):
        _entry_values(
            values,
            index,
            {
                "question": entry["question"],
                "answer": entry["answer"],
                "translations": [
                    {
                        "locale": text["locale"],
                        "question": text["question"],
                        "answer": text["answer"],
                    }
                    for text in entry.get("translations") or ()
                ],
            },
        )
    return values


async def _categories_admin_page(
    visitor: Visitor,
    form: FormState,
    category: Category | None = None,
    status_code: int = 200,
) -> Response:
    listed = await visitor.api.list_categories()
    audiences = {
        "customer": visitor.t("support.audience.customer"),
        "partner": visitor.t("support.audience.partner"),
    }
    return await _render(
        visitor,
        "support/categories_admin.html",
        {
            "categories": sorted(listed["items"], key=lambda c: (c["audience"], c["position"])),
            "category": category,
            "form": form,
            "rows": _entry_rows(form.values),
            "audience_options": list(audiences.items()),
            "audiences": audiences,
            "languages": [(HTML_LANG[locale], LANGUAGE_NAMES[locale]) for locale in LOCALES],
            # Translations fold away unless one of them was refused.
            "errors_under": lambda prefix: any(name.startswith(prefix) for name in form.errors),
            "agent": True,
        },
        status_code=status_code,
    )


def _position(typed: TypedInputs, values: dict[str, str]) -> Any:
    """The category's rank (0 when left blank), or the text as typed for the gateway to refuse."""
    position = typed.number(values, "position", "form.expects_whole")
    return 0 if position is None else position


@router.get("/support/admin/categories", response_class=HTMLResponse)
async def categories_admin(visitor: CurrentVisitor) -> Response:
    await visitor.me()
    form = FormState(values={"audience": "customer", "position": "0"})
    return await _categories_admin_page(visitor, form)


@router.post("/support/admin/categories", response_class=HTMLResponse)
async def create_category(visitor: CurrentVisitor) -> Response:
    await visitor.me()
    entries, values = _entries_from(await form_values(visitor.request))
    typed = TypedInputs()
    position = _position(typed, values)
    body: CategoryBody = {
        "code": values.get("code", "").strip(),
        "name": values.get("name", "").strip(),
        "audience": cast(CategoryAudience, values.get("audience", "")),
        "position": position,
        "entries": entries,
        "translations": _name_translations(values),
    }
    try:
        created = await visitor.api.create_category(body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status == 401:
            raise
        form = typed.explain(
            _refused(visitor, values, problem, body["translations"], entries), visitor.t
        )
        return await _categories_admin_page(visitor, form, status_code=400)
    flash(visitor.request, "support.category_created")
    return redirect(f"/support/admin/categories/{created['id']}")


async def _category(visitor: Visitor, category_id: str) -> Category:
    """Read without recording a customer's view (view_category counts views for deflection)."""
    for category in (await visitor.api.list_categories())["items"]:
        if category["id"] == category_id:
            return category
    raise ApiProblem(404, {"type": "about:blank#not_found", "status": 404})


@router.get("/support/admin/categories/{category_id}", response_class=HTMLResponse)
async def category_admin(visitor: CurrentVisitor, category_id: str) -> Response:
    await visitor.me()
    category = await _category(visitor, category_id)
    form = FormState(values=_category_values(category))
    return await _categories_admin_page(visitor, form, category)


@router.post("/support/admin/categories/{category_id}", response_class=HTMLResponse)
async def update_category(visitor: CurrentVisitor, category_id: str) -> Response:
    await visitor.me()
    category = await _category(visitor, category_id)
    entries, values = _entries_from(await form_values(visitor.request))
    values["code"], values["audience"] = category["code"], category["audience"]
    typed = TypedInputs()
    position = _position(typed, values)
    body: CategoryUpdateBody = {
        "name": values.get("name", "").strip(),
        "position": position,
        "entries": entries,
        "translations": _name_translations(values),
    }
    try:
        await visitor.api.update_category(category_id, body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        form = typed.explain(
            _refused(visitor, values, problem, body["translations"], entries), visitor.t
        )
        return await _categories_admin_page(visitor, form, category, status_code=400)
    flash(visitor.request, "support.category_saved")
    return redirect(f"/support/admin/categories/{category_id}")


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("support.category_created"),
    N_("support.category_saved"),
)
