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
    CategoryUpdateBody,
    FaqEntryBody,
)
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.forms import TypedInputs
from web.i18n import register
from web.pages import form_values, redirect
from web.portals.support import _render
from web.problems import FormState
from web.session import Visitor

MESSAGES: dict[str, tuple[str, str]] = {
    "support.admin_categories": ("Catégories et FAQ", "Categories and FAQ"),
    "support.admin_intro": (
        "Les questions et réponses de chaque catégorie s'affichent avant le formulaire de ticket.",
        "Each category's questions and answers show before the ticket form.",
    ),
    "support.new_category": ("Nouvelle catégorie", "New category"),
    "support.edit_category": ("Modifier : {name}", "Edit: {name}"),
    "support.faq_count": ("Questions", "Questions"),
    "support.code": ("Code", "Code"),
    "support.name": ("Nom", "Name"),
    "support.audience": ("Public", "Audience"),
    "support.audience.customer": ("Clients ERP", "ERP customers"),
    "support.audience.partner": ("Partenaires livraison", "Delivery partners"),
    "support.position": ("Ordre d'affichage", "Display order"),
    "support.entry": ("Question et réponse {n}", "Question and answer {n}"),
    "support.question": ("Question", "Question"),
    "support.answer": ("Réponse proposée", "Suggested answer"),
    "support.entries_help": (
        "Laissez une ligne vide pour ne rien ajouter ; videz-la pour retirer la question.",
        "Leave a row blank to add nothing; empty it to remove the question.",
    ),
    "support.create_category": ("Créer la catégorie", "Create the category"),
    "support.save_category": ("Enregistrer la catégorie", "Save the category"),
    "support.category_created": ("Catégorie créée.", "Category created."),
    "support.category_saved": ("Catégorie enregistrée.", "Category saved."),
}
register(MESSAGES)

router: APIRouter = APIRouter()


# --- The FAQ's categories (ops admin): what customers read before any ticket -----------------

_BLANK_ROWS = 2


def _entry_rows(values: dict[str, str]) -> int:
    """How many question/answer rows the form shows: those typed, plus blank ones to add."""
    typed = [k for k in values if k.startswith("entries[") and k.endswith("].question")]
    return len(typed) + _BLANK_ROWS


def _entries_from(values: dict[str, str]) -> tuple[list[FaqEntryBody], dict[str, str]]:
    """The filled rows, renumbered without the blank ones: the API's `entries[i]` errors then
    name the row the form shows again at index i."""
    entries: list[FaqEntryBody] = []
    index = 0
    while f"entries[{index}].question" in values or f"entries[{index}].answer" in values:
        question = values.get(f"entries[{index}].question", "").strip()
        answer = values.get(f"entries[{index}].answer", "").strip()
        if question or answer:
            entries.append({"question": question, "answer": answer})
        index += 1
    kept = {k: v for k, v in values.items() if not k.startswith("entries[")}
    for position, entry in enumerate(entries):
        kept[f"entries[{position}].question"] = entry["question"]
        kept[f"entries[{position}].answer"] = entry["answer"]
    return entries, kept


def _category_values(category: Category) -> dict[str, str]:
    values = {
        "code": category["code"],
        "name": category["name"],
        "audience": category["audience"],
        "position": str(category["position"]),
    }
    for index, entry in enumerate(category["entries"]):
        values[f"entries[{index}].question"] = entry["question"]
        values[f"entries[{index}].answer"] = entry["answer"]
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
    }
    try:
        created = await visitor.api.create_category(body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status == 401:
            raise
        form = typed.explain(FormState.refused(visitor.locale, values, problem, {}), visitor.t)
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
    }
    try:
        await visitor.api.update_category(category_id, body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        form = typed.explain(FormState.refused(visitor.locale, values, problem, {}), visitor.t)
        return await _categories_admin_page(visitor, form, category, status_code=400)
    flash(visitor.request, "support.category_saved")
    return redirect(f"/support/admin/categories/{category_id}")
