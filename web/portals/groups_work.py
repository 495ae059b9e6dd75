"""The groups portal's employees page (a role for some employees on one group, with the access
summary before saving) and the process requests table, whose running rows refresh themselves
(htmx polling of a fragment that stops once nothing is pending or in progress)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from web.client.api import AssignEmployeesBody, DelegatedRole, ProcessRequest
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.i18n import N_
from web.pages import redirect, render
from web.paging import every_item, paged
from web.problems import FormState
from web.session import Visitor

router = APIRouter()

ROLES: tuple[DelegatedRole, ...] = ("program_account_manager", "editor", "read_only")
_RUNNING = ("pending", "in_progress")


def typed_word(single: dict[str, str]) -> Any:
    """The confirmation word as typed, trimmed and upper-cased; the gateway checks it against
    the act's words (and answers a `confirmation` field error otherwise)."""
    return single.get("confirmation", "").strip().upper() or None


async def posted(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The posted form: single values, and every list (checkboxes, hidden pairs)."""
    form = await request.form()
    single = {k: v for k, v in form.items() if isinstance(v, str)}
    lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
    return single, lists


# --- relationships -------------------------------------------------------------------------


@router.get("/providers/{provider_id}/relationships", response_class=HTMLResponse)
async def relationships_page(
    visitor: CurrentVisitor, provider_id: str, page_token: str = ""
) -> Response:
    """Why a client is (not) available: its relationship's status, expiry and group. The
    groups are read whole: they name the group of any relationship of the page."""
    (page, pager), groups = await asyncio.gather(
        paged(
            visitor.request.url, partial(visitor.api.list_relationships, provider_id), page_token
        ),
        every_item(partial(visitor.api.list_groups, provider_id)),
    )
    return await render(
        visitor,
        "groups/relationships.html",
        {
            "provider_id": provider_id,
            "relationships": page["items"],
            "pager": pager,
            "group_names": {g["id"]: g["name"] for g in groups},
        },
    )


# --- employees -----------------------------------------------------------------------------


async def _employees_page(
    visitor: Visitor,
    provider_id: str,
    form: FormState,
    chosen: list[str],
    *,
    status_code: int = 200,
) -> Response:
    """One page of the employees to pick from; every group to choose (a choice is whole). The
    page's token travels in the form, so a refusal shows the page the person picked from."""
    (employees, pager), groups = await asyncio.gather(
        paged(
            visitor.request.url,
            partial(visitor.api.list_employees, provider_id),
            form.value("page_token"),
            path=f"/providers/{provider_id}/employees",
        ),
        every_item(partial(visitor.api.list_groups, provider_id)),
    )
    return await render(
        visitor,
        "groups/employees.html",
        {
            "provider_id": provider_id,
            "employees": employees["items"],
            "pager": pager,
            "page_token": form.value("page_token"),
            "groups": groups,
            "roles": [(r, visitor.t(f"role.{r}")) for r in ROLES],
            "chosen": chosen,
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/providers/{provider_id}/employees", response_class=HTMLResponse)
async def employees_page(
    visitor: CurrentVisitor, provider_id: str, group_id: str = "", page_token: str = ""
) -> Response:
    form = FormState(values={"group_id": group_id, "role": "read_only", "page_token": page_token})
    return await _employees_page(visitor, provider_id, form, [])


def _assignment(single: dict[str, str], chosen: list[str]) -> AssignEmployeesBody:
    role = single.get("role", "")
    return {
        "group_id": single.get("group_id", ""),
        "role": role if role in ROLES else "read_only",
        "employee_ids": chosen,
    }


async def _chosen(
    visitor: Visitor, provider_id: str, single: dict[str, str], ids: list[str]
) -> list[str]:
    """ "Tous" selects every employee, of every page, server-side, so that it needs no script."""
    if single.get("all_employees"):
        employees = await every_item(partial(visitor.api.list_employees, provider_id))
        return [e["id"] for e in employees]
    return ids


@router.post("/providers/{provider_id}/employees", response_class=HTMLResponse)
async def employees_next(visitor: CurrentVisitor, provider_id: str) -> Response:
    """ "Suivant": the access summary of the assignment (a dry run), or the refusals."""
    single, lists = await posted(visitor.request)
    chosen = await _chosen(visitor, provider_id, single, lists.get("employee_ids", []))
    form = FormState(values=single)
    # No check of its own before the gateway's: its one answer names every problem at once.
    body = _assignment(single, chosen)
    return await _assign_confirm(visitor, provider_id, form, body)


async def _assign_confirm(
    visitor: Visitor,
    provider_id: str,
    form: FormState,
    body: AssignEmployeesBody,
    *,
    status_code: int = 200,
) -> Response:
    try:
        answer = await visitor.api.assign_employees(provider_id, {**body, "dry_run": True})
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403):
            raise
        refused = FormState.refused(visitor.locale, form.values, problem, {})
        # The page's own words for the two choices it asks for.
        if "employee_ids" in refused.errors:
            refused.errors["employee_ids"] = visitor.t("groups.pick_employee")
        if "group_id" in refused.errors:
            refused.errors["group_id"] = visitor.t("groups.pick_group")
        return await _employees_page(
            visitor, provider_id, refused, body["employee_ids"], status_code=400
        )
    return await render(
        visitor,
        "groups/assign_confirm.html",
        {
            "provider_id": provider_id,
            "group": answer["group"],
            "summary": answer["summary"],
            "body": body,
            "form": form,
        },
        status_code=status_code,
    )


@router.post("/providers/{provider_id}/employees/assign", response_class=HTMLResponse)
async def employees_assign(visitor: CurrentVisitor, provider_id: str) -> Response:
    single, lists = await posted(visitor.request)
    body = _assignment(single, lists.get("employee_ids", []))
    if single.get("action") == "back":
        return await _employees_page(
            visitor, provider_id, FormState(values=single), body["employee_ids"]
        )
    try:
        answer = await visitor.api.assign_employees(
            provider_id, body, confirmation=typed_word(single)
        )
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403):
            raise
        form = FormState.refused(visitor.locale, single, problem, {})
        if "confirmation" in form.errors:
            form.errors["confirmation"] = visitor.t("groups.confirm_wrong")
        form.values.pop("confirmation", None)
        return await _assign_confirm(visitor, provider_id, form, body, status_code=400)
    requests = answer["process_requests"]
    flash(visitor.request, "groups.assigned_done")
    target = f"/providers/{provider_id}/process-requests"
    if requests:
        target += f"?highlight={requests[0]['id']}"
    return redirect(target)


# --- process requests ----------------------------------------------------------------------


def _running(requests: list[ProcessRequest]) -> bool:
    return any(r["status"] in _RUNNING for r in requests)


async def _requests(visitor: Visitor, provider_id: str, page_token: str) -> dict[str, object]:
    """One page of the requests, newest first. The polled fragment asks for the same page as
    the page it refreshes (its query is the page's), and its links lead to the page itself."""
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_process_requests, provider_id),
        page_token,
        path=f"/providers/{provider_id}/process-requests",
    )
    requests: list[ProcessRequest] = page["items"]
    query = visitor.request.url.query
    return {
        "provider_id": provider_id,
        "requests": requests,
        "running": _running(requests),
        "pager": pager,
        "table_url": f"/providers/{provider_id}/process-requests/table"
        + (f"?{query}" if query else ""),
    }


@router.get("/providers/{provider_id}/process-requests", response_class=HTMLResponse)
async def requests_page(
    visitor: CurrentVisitor, provider_id: str, highlight: str = "", page_token: str = ""
) -> Response:
    context = await _requests(visitor, provider_id, page_token)
    return await render(
        visitor,
        "groups/requests.html",
        {**context, "highlight": highlight, "form": FormState()},
    )


@router.get("/providers/{provider_id}/process-requests/table", response_class=HTMLResponse)
async def requests_table(
    visitor: CurrentVisitor, provider_id: str, highlight: str = "", page_token: str = ""
) -> Response:
    """The polled fragment: once nothing runs it comes back without its trigger, so it stops."""
    context = await _requests(visitor, provider_id, page_token)
    return await render(visitor, "groups/_requests.html", {**context, "highlight": highlight})


async def _request_context(
    visitor: Visitor, provider_id: str, request_id: str, page_token: str
) -> dict[str, object]:
    """The request and one page of its failures (the polled part keeps the page's query)."""
    here = f"/providers/{provider_id}/process-requests/{request_id}"
    request = await visitor.api.get_process_request(provider_id, request_id)
    failures, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_process_request_failures, provider_id, request_id),
        page_token,
        path=here,
    )
    query = visitor.request.url.query
    return {
        "provider_id": provider_id,
        "pr": request,
        "running": request["status"] in _RUNNING,
        "failures": failures["items"],
        "pager": pager,
        "progress_url": f"{here}/progress" + (f"?{query}" if query else ""),
    }


@router.get("/providers/{provider_id}/process-requests/{request_id}", response_class=HTMLResponse)
async def request_page(
    visitor: CurrentVisitor, provider_id: str, request_id: str, page_token: str = ""
) -> Response:
    context = await _request_context(visitor, provider_id, request_id, page_token)
    context["form"] = FormState()
    return await render(visitor, "groups/request.html", context)


@router.get(
    "/providers/{provider_id}/process-requests/{request_id}/progress",
    response_class=HTMLResponse,
)
async def request_progress(
    visitor: CurrentVisitor, provider_id: str, request_id: str, page_token: str = ""
) -> Response:
    context = await _request_context(visitor, provider_id, request_id, page_token)
    return await render(visitor, "groups/_request_live.html", context)


@router.post(
    "/providers/{provider_id}/process-requests/{request_id}/retry", response_class=HTMLResponse
)
async def request_retry(visitor: CurrentVisitor, provider_id: str, request_id: str) -> Response:
    try:
        retried = await visitor.api.retry_process_request(provider_id, request_id)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403, 404):
            raise
        context = await _request_context(visitor, provider_id, request_id, "")
        context["form"] = FormState.refused(visitor.locale, {}, problem, {})
        return await render(visitor, "groups/request.html", context, status_code=400)
    flash(visitor.request, "groups.retried")
    return redirect(f"/providers/{provider_id}/process-requests/{retried['id']}")


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("failure.batch_failed"),
    N_("failure.program_account_closed"),
    N_("groups.details"),
    N_("operation.add_clients"),
    N_("operation.assign_employees"),
    N_("operation.delete_group"),
    N_("operation.program_accounts_added"),
    N_("operation.relationship_expired"),
    N_("operation.remove_clients"),
    N_("operation.unassign_employees"),
    N_("problem.attempt_superseded"),
    N_("problem.process_request_not_failed"),
    N_("problem.process_request_not_found"),
    N_("relationship.active"),
    N_("relationship.expired"),
    N_("relationship.pending"),
    N_("status.completed"),
    N_("status.failed"),
    N_("status.in_progress"),
    N_("status.pending"),
)
