"""A service provider's client groups (seed 001): the groups list, "Créer un groupe" with a client
search, a group's page, its changes shown as an access summary before the typed CONFIRMER, and
its deletion behind SUPPRIMER. The employees and process requests pages are in groups_work.py.

Only the provider's business account manager may see any of it: the gateway refuses everyone
else, and that refusal reaches the app's error page by itself.

The two-list pickers (available clients → the group) keep their state in the form itself
(hidden `id|name` values), so every step works without JavaScript; htmx only refreshes the
available clients as the person types in the search field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import Client, GroupChangesBody
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.i18n import N_
from web.pages import redirect, render
from web.paging import paged
from web.portals.groups_work import (
    posted as _posted,
    router as work_router,
    typed_word,
)
from web.problems import FormState
from web.session import Visitor

router = APIRouter()
router.include_router(work_router)

_PAGE = 100
# The name's refusals come as 409s without a field: they belong beside the name all the same.
_NAME_REASONS = {"group_name_taken", "group_name_deleted"}


@dataclass
class Picker:
    """The state of a two-list picker, carried by the form: `id|name` pairs."""

    chosen: dict[str, str] = field(default_factory=dict)
    removing: dict[str, str] = field(default_factory=dict)


def _pairs(values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        client_id, _, name = value.partition("|")
        if client_id:
            pairs[client_id] = name or client_id
    return pairs


async def _available(
    visitor: Visitor, provider_id: str, q: str, exclude: dict[str, str]
) -> tuple[list[Client], bool]:
    page = await visitor.api.list_available_clients(provider_id, q=q or None, page_size=_PAGE)
    items = [c for c in page["items"] if c["id"] not in exclude]
    return items, bool(page.get("next_page_token"))


def _apply_picks(lists: dict[str, list[str]], single: dict[str, str], shown: list[str]) -> None:
    """ "Tous" ticks every available client shown: done server-side, so it needs no script."""
    if single.get("pick_all"):
        lists["pick"] = shown


# --- the groups list -----------------------------------------------------------------------


@router.get("/providers/{provider_id}/groups", response_class=HTMLResponse)
async def groups_list(visitor: CurrentVisitor, provider_id: str, page_token: str = "") -> Response:
    groups, pager = await paged(
        visitor.request.url, partial(visitor.api.list_groups, provider_id), page_token
    )
    provider = await visitor.organisation(provider_id)
    return await render(
        visitor,
        "groups/list.html",
        {
            "provider_id": provider_id,
            "provider": provider,
            "groups": groups["items"],
            "pager": pager,
            "form": FormState(),
        },
    )


# --- create --------------------------------------------------------------------------------


async def _create_page(
    visitor: Visitor,
    provider_id: str,
    form: FormState,
    picker: Picker,
    *,
    fragment: bool = False,
    status_code: int = 200,
) -> Response:
    q = form.value("q")
    available, more = await _available(visitor, provider_id, q, picker.chosen)
    context = {
        "provider_id": provider_id,
        "form": form,
        "picker": picker,
        "available": available,
        "more": more,
        "available_action": f"/providers/{provider_id}/groups/new/available",
    }
    template = "groups/_available.html" if fragment else "groups/create.html"
    return await render(visitor, template, context, status_code=status_code)


@router.get("/providers/{provider_id}/groups/new", response_class=HTMLResponse)
async def create_page(visitor: CurrentVisitor, provider_id: str, q: str = "") -> Response:
    await visitor.api.list_groups(provider_id, page_size=1)  # the manager's, or the error page
    return await _create_page(visitor, provider_id, FormState(values={"q": q}), Picker())


@router.post("/providers/{provider_id}/groups/new/available", response_class=HTMLResponse)
async def create_available(visitor: CurrentVisitor, provider_id: str) -> Response:
    """The htmx search: only the available clients' list, without those already chosen."""
    single, lists = await _posted(visitor.request)
    picker = Picker(chosen=_pairs(lists.get("chosen", [])))
    return await _create_page(visitor, provider_id, FormState(values=single), picker, fragment=True)


@router.post("/providers/{provider_id}/groups/new", response_class=HTMLResponse)
async def create_group(visitor: CurrentVisitor, provider_id: str) -> Response:
    single, lists = await _posted(visitor.request)
    action = single.get("action", "search")
    picker = Picker(chosen=_pairs(lists.get("chosen", [])))
    form = FormState(values=single)
    if action == "add":
        if single.get("pick_all"):
            shown, _ = await _available(visitor, provider_id, single.get("q", ""), picker.chosen)
            picker.chosen.update({c["id"]: c["name"] for c in shown})
        picker.chosen.update(_pairs(lists.get("pick", [])))
    elif action == "clear":
        for client_id in _pairs(lists.get("drop", [])):
            picker.chosen.pop(client_id, None)
    elif action == "create":
        # No check of its own before the gateway's (no client chosen, say): the one answer
        # names every problem of the form at once.
        try:
            group = await visitor.api.create_group(
                provider_id,
                {"name": single.get("name", "").strip(), "client_ids": list(picker.chosen)},
            )
        except ApiProblem as problem:
            if problem.status >= 500 or problem.status in (401, 403):
                raise
            form = _refused(visitor, single, problem)
            if not picker.chosen and "client_ids" in form.errors:
                form.errors["client_ids"] = visitor.t("groups.select_one")
            return await _create_page(visitor, provider_id, form, picker, status_code=400)
        flash(visitor.request, "groups.created", name=group["name"])
        return redirect(f"/providers/{provider_id}/groups/{group['id']}")
    form.values["pick_all"] = ""
    return await _create_page(visitor, provider_id, form, picker)


def _refused(visitor: Visitor, values: dict[str, str], problem: ApiProblem) -> FormState:
    form = FormState.refused(visitor.locale, values, problem, {})
    if problem.reason in _NAME_REASONS:
        form.errors["name"] = visitor.t(f"problem.{problem.reason}")
    if "confirmation" in form.errors:
        form.errors["confirmation"] = visitor.t("groups.confirm_wrong")
    return form


# --- one group -----------------------------------------------------------------------------


@router.get("/providers/{provider_id}/groups/{group_id}", response_class=HTMLResponse)
async def group_page(
    visitor: CurrentVisitor,
    provider_id: str,
    group_id: str,
    q: str = "",
    page_token: str = "",
) -> Response:
    group = await visitor.api.get_group(provider_id, group_id)
    clients, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_group_clients, provider_id, group_id, q=q or None),
        page_token,
    )
    return await render(
        visitor,
        "groups/detail.html",
        {
            "provider_id": provider_id,
            "group": group,
            "clients": clients["items"],
            "pager": pager,
            "form": FormState(values={"q": q}),
        },
    )


# --- edit, summary, save -------------------------------------------------------------------


def _edit_picker(lists: dict[str, list[str]]) -> Picker:
    return Picker(
        chosen=_pairs(lists.get("adding", [])), removing=_pairs(lists.get("removing", []))
    )


async def _edit_page(
    visitor: Visitor,
    provider_id: str,
    group_id: str,
    form: FormState,
    picker: Picker,
    unassign: list[str],
    *,
    fragment: bool = False,
    status_code: int = 200,
) -> Response:
    group = await visitor.api.get_group(provider_id, group_id)
    available, more = await _available(visitor, provider_id, form.value("q"), picker.chosen)
    context: dict[str, object] = {
        "provider_id": provider_id,
        "group": group,
        "form": form,
        "picker": picker,
        "available": available,
        "more": more,
        "unassign": unassign,
        "available_action": f"/providers/{provider_id}/groups/{group_id}/available",
    }
    if fragment:
        return await render(visitor, "groups/_available.html", context)
    members = await visitor.api.list_group_clients(
        provider_id, group_id, q=form.value("mq") or None, page_size=_PAGE
    )
    context["members"] = [c for c in members["items"] if c["id"] not in picker.removing]
    context["members_more"] = bool(members.get("next_page_token"))
    return await render(visitor, "groups/edit.html", context, status_code=status_code)


@router.get("/providers/{provider_id}/groups/{group_id}/edit", response_class=HTMLResponse)
async def edit_page(visitor: CurrentVisitor, provider_id: str, group_id: str) -> Response:
    group = await visitor.api.get_group(provider_id, group_id)
    form = FormState(values={"name": group["name"]})
    return await _edit_page(visitor, provider_id, group_id, form, Picker(), [])


@router.post("/providers/{provider_id}/groups/{group_id}/available", response_class=HTMLResponse)
async def edit_available(visitor: CurrentVisitor, provider_id: str, group_id: str) -> Response:
    single, lists = await _posted(visitor.request)
    return await _edit_page(
        visitor,
        provider_id,
        group_id,
        FormState(values=single),
        _edit_picker(lists),
        lists.get("unassign_employee_ids", []),
        fragment=True,
    )


def _changes(
    single: dict[str, str], picker: Picker, unassign: list[str], current_name: str
) -> GroupChangesBody:
    body: GroupChangesBody = {}
    name = single.get("name", "").strip()
    if name and name != current_name:
        body["name"] = name
    if picker.chosen:
        body["add_client_ids"] = list(picker.chosen)
    if picker.removing:
        body["remove_client_ids"] = list(picker.removing)
    if unassign:
        body["unassign_employee_ids"] = unassign
    return body


@router.post("/providers/{provider_id}/groups/{group_id}/edit", response_class=HTMLResponse)
async def edit_group(visitor: CurrentVisitor, provider_id: str, group_id: str) -> Response:
    single, lists = await _posted(visitor.request)
    action = single.get("action", "search")
    picker = _edit_picker(lists)
    unassign = lists.get("unassign_employee_ids", [])
    form = FormState(values=single)
    if action == "add":
        if single.get("pick_all"):
            shown, _ = await _available(visitor, provider_id, single.get("q", ""), picker.chosen)
            picker.chosen.update({c["id"]: c["name"] for c in shown})
        picker.chosen.update(_pairs(lists.get("pick", [])))
    elif action == "clear":
        picker.removing.update(_pairs(lists.get("drop", [])))
    elif action == "undo":
        for client_id in _pairs(lists.get("undo", [])):
            picker.chosen.pop(client_id, None)
            picker.removing.pop(client_id, None)
    elif action == "next":
        group = await visitor.api.get_group(provider_id, group_id)
        body = _changes(single, picker, unassign, group["name"])
        if not body:
            form.summary = visitor.t("groups.nothing")
            return await _edit_page(
                visitor, provider_id, group_id, form, picker, unassign, status_code=400
            )
        return await _confirm_page(visitor, provider_id, group_id, form, picker, unassign, body)
    form.values["pick_all"] = ""
    return await _edit_page(visitor, provider_id, group_id, form, picker, unassign)


async def _confirm_page(
    visitor: Visitor,
    provider_id: str,
    group_id: str,
    form: FormState,
    picker: Picker,
    unassign: list[str],
    body: GroupChangesBody,
    *,
    status_code: int = 200,
) -> Response:
    """The access summary (the gateway's dry run) before anything is written."""
    group = await visitor.api.get_group(provider_id, group_id)
    try:
        summary = await visitor.api.access_summary(provider_id, group_id, body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403, 404):
            raise
        refused = _refused(visitor, form.values, problem)
        return await _edit_page(
            visitor, provider_id, group_id, refused, picker, unassign, status_code=400
        )
    return await render(
        visitor,
        "groups/confirm.html",
        {
            "provider_id": provider_id,
            "group": group,
            "form": form,
            "picker": picker,
            "unassign": unassign,
            "summary": summary,
            "new_name": body.get("name"),
        },
        status_code=status_code,
    )


@router.post("/providers/{provider_id}/groups/{group_id}/changes", response_class=HTMLResponse)
async def save_changes(visitor: CurrentVisitor, provider_id: str, group_id: str) -> Response:
    single, lists = await _posted(visitor.request)
    picker = _edit_picker(lists)
    unassign = lists.get("unassign_employee_ids", [])
    group = await visitor.api.get_group(provider_id, group_id)
    body = _changes(single, picker, unassign, group["name"])
    if single.get("action") == "back":
        return await _edit_page(
            visitor, provider_id, group_id, FormState(values=single), picker, unassign
        )
    try:
        saved = await visitor.api.save_group_changes(
            provider_id, group_id, body, confirmation=typed_word(single)
        )
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403, 404):
            raise
        form = _refused(visitor, single, problem)
        form.values.pop("confirmation", None)
        if problem.reason in _NAME_REASONS:
            return await _edit_page(
                visitor, provider_id, group_id, form, picker, unassign, status_code=400
            )
        return await _confirm_page(
            visitor, provider_id, group_id, form, picker, unassign, body, status_code=400
        )
    flash(visitor.request, "groups.updated", name=saved["group"]["name"])
    return redirect(f"/providers/{provider_id}/groups/{group_id}")


# --- delete --------------------------------------------------------------------------------


@router.get("/providers/{provider_id}/groups/{group_id}/delete", response_class=HTMLResponse)
async def delete_page(visitor: CurrentVisitor, provider_id: str, group_id: str) -> Response:
    group = await visitor.api.get_group(provider_id, group_id)
    return await render(
        visitor,
        "groups/delete.html",
        {"provider_id": provider_id, "group": group, "form": FormState()},
    )


@router.post("/providers/{provider_id}/groups/{group_id}/delete", response_class=HTMLResponse)
async def delete_group(visitor: CurrentVisitor, provider_id: str, group_id: str) -> Response:
    single, _ = await _posted(visitor.request)
    group = await visitor.api.get_group(provider_id, group_id)
    try:
        await visitor.api.delete_group(provider_id, group_id, confirmation=typed_word(single))
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403, 404):
            raise
        form = FormState.refused(visitor.locale, single, problem, {})
        if "confirmation" in form.errors:
            form.errors["confirmation"] = visitor.t("groups.delete_wrong")
        return await render(
            visitor,
            "groups/delete.html",
            {"provider_id": provider_id, "group": group, "form": form},
            status_code=400,
        )
    flash(visitor.request, "groups.deleted", name=group["name"])
    return redirect(f"/providers/{provider_id}/groups")


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("groups.created"),
    N_("groups.deleted"),
    N_("groups.follow"),
    N_("groups.updated"),
    N_("problem.client_already_grouped"),
    N_("problem.group_name_deleted"),
    N_("problem.group_name_taken"),
    N_("problem.group_not_found"),
    N_("problem.program_account_client_mismatch"),
    N_("role.editor"),
    N_("role.none"),
    N_("role.program_account_manager"),
    N_("role.read_only"),
)
