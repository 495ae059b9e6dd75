"""The groups portal's employees page (a role for some employees on one group, with the access
summary before saving) and the process requests table, whose running rows refresh themselves
(htmx polling of a fragment that stops once nothing is pending or in progress)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from web.client.api import AssignEmployeesBody, DelegatedRole, ProcessRequest
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.pages import redirect, render
from web.problems import FormState
from web.session import Visitor

MESSAGES = {
    "groups.employees_title": ("Employés", "Employees"),
    "groups.employees_intro": (
        "Seuls les employés ayant le rôle de gestionnaire de compte de programme, d'éditeur ou "
        "de lecture seule peuvent être affectés : le gestionnaire de compte d'entreprise a déjà "
        "accès à tous les clients.",
        "Only employees with the program account manager, editor or read-only role can be "
        "assigned: the business account manager already has access to every client.",
    ),
    "groups.employees_caption": ("Employés à affecter", "Employees to assign"),
    "groups.no_employees": ("Aucun employé à affecter.", "No employee to assign."),
    "groups.select_employee": ("Sélectionner {name}", "Select {name}"),
    "groups.selection": ("Sélection", "Selection"),
    "groups.all_employees": ("Tous les employés", "All the employees"),
    "groups.employee_roles": ("Rôles", "Roles"),
    "groups.assignments": ("Affectations", "Assignments"),
    "groups.choose_group": ("Groupe de clients", "Client group"),
    "groups.choose_role": ("Rôle dans le groupe", "Role in the group"),
    "groups.pick_employee": (
        "Sélectionnez au moins un employé.",
        "Select at least one employee.",
    ),
    "groups.pick_group": ("Choisissez un groupe.", "Choose a group."),
    "groups.assign_title": ("Sommaire des accès des employés", "The employees' access summary"),
    "groups.assign_intro": (
        "Rôle {role} sur le groupe « {group} » : il s'applique à tous les comptes de programme "
        "de ses clients.",
        "Role {role} on the group “{group}”: it applies to every program account of its clients.",
    ),
    "groups.assigned_done": (
        "Le rôle d'accès des employés est en cours de mise à jour pour tous les comptes de "
        "programme des clients du groupe.",
        "The employees' access role is being updated for every program account of the "
        "group's clients.",
    ),
    "groups.requests_title": ("Demandes de traitement", "Process requests"),
    "groups.requests_intro": (
        "Les modifications des groupes s'appliquent en arrière-plan : suivez ici leur état.",
        "Group changes apply in the background: follow their state here.",
    ),
    "groups.requests_caption": ("Demandes de traitement des groupes", "Group process requests"),
    "groups.no_requests": ("Aucune demande de traitement.", "No process request."),
    "groups.request_id": ("Numéro d'identification", "Identification number"),
    "groups.operation": ("Type d'opération", "Operation type"),
    "groups.group": ("Groupe", "Group"),
    "groups.initiator": ("Initiateur", "Initiator"),
    "groups.status": ("Statut", "Status"),
    "groups.progress": ("Progression", "Progress"),
    "groups.date": ("Date", "Date"),
    "groups.progress_of": ("{done} / {total}", "{done} / {total}"),
    "groups.failed_count": ("{n} échec(s)", "{n} failure(s)"),
    "groups.details": ("Détails", "Details"),
    "groups.request_title": ("Demande de traitement {id}", "Process request {id}"),
    "groups.attempt": ("Tentative", "Attempt"),
    "groups.finished": ("Terminée le", "Finished on"),
    "groups.failures": ("Échecs", "Failures"),
    "groups.failures_caption": (
        "Comptes de programme non mis à jour",
        "Program accounts not updated",
    ),
    "groups.no_failures": ("Aucun échec.", "No failure."),
    "groups.account": ("Compte de programme", "Program account"),
    "groups.client": ("Client", "Client"),
    "groups.reason": ("Raison", "Reason"),
    "groups.retry": ("Réessayer les échecs", "Retry the failures"),
    "groups.retried": (
        "Nouvelle tentative lancée pour les comptes en échec.",
        "A new attempt has started for the failed accounts.",
    ),
    "groups.all_requests": ("Toutes les demandes", "All the requests"),
    "groups.relationships": ("Relations d'affaires", "Business relationships"),
    "groups.relationships_title": ("Mes relations d'affaires", "My business relationships"),
    "groups.relationships_intro": (
        "Seuls les clients d'une relation active (entièrement approuvée, non expirée) peuvent "
        "faire partie d'un groupe ; une relation expirée retire le client de son groupe.",
        "Only clients of an active relationship (fully approved, not expired) can be in a "
        "group; an expired relationship takes the client out of its group.",
    ),
    "groups.no_relationships": ("Aucune relation d'affaires.", "No business relationship."),
    "groups.expires": ("Expire le", "Expires on"),
    "relationship.pending": ("En attente d'approbation", "Awaiting approval"),
    "relationship.active": ("Active", "Active"),
    "relationship.expired": ("Expirée", "Expired"),
    "failure.program_account_closed": ("Compte de programme fermé", "Program account closed"),
    "failure.batch_failed": ("Lot en échec", "Batch failed"),
    "status.pending": ("En attente", "Pending"),
    "status.in_progress": ("En cours", "In progress"),
    "status.completed": ("Terminée", "Completed"),
    "status.failed": ("Échouée", "Failed"),
    "operation.assign_employees": ("Affectation d'employés", "Employees assigned"),
    "operation.unassign_employees": ("Retrait d'employés", "Employees removed"),
    "operation.add_clients": ("Ajout de clients", "Clients added"),
    "operation.remove_clients": ("Retrait de clients", "Clients removed"),
    "operation.delete_group": ("Suppression du groupe", "Group deleted"),
    "operation.relationship_expired": ("Relation expirée", "Relationship expired"),
    "operation.program_accounts_added": (
        "Nouveaux comptes de programme",
        "New program accounts",
    ),
    "problem.process_request_not_failed": (
        "Seule une demande échouée peut être réessayée.",
        "Only a failed request can be retried.",
    ),
    "problem.process_request_not_found": (
        "Cette demande de traitement est introuvable.",
        "This process request cannot be found.",
    ),
    "problem.attempt_superseded": (
        "Une tentative plus récente a déjà été lancée.",
        "A more recent attempt has already started.",
    ),
}

router = APIRouter()

ROLES: tuple[DelegatedRole, ...] = ("program_account_manager", "editor", "read_only")
_RUNNING = ("pending", "in_progress")


async def posted(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The posted form: single values, and every list (checkboxes, hidden pairs)."""
    form = await request.form()
    single = {k: v for k, v in form.items() if isinstance(v, str)}
    lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
    return single, lists


# --- relationships -------------------------------------------------------------------------


@router.get("/providers/{provider_id}/relationships", response_class=HTMLResponse)
async def relationships_page(visitor: CurrentVisitor, provider_id: str) -> Response:
    """Why a client is (not) available: its relationship's status, expiry and group."""
    page, groups = await asyncio.gather(
        visitor.api.list_relationships(provider_id, page_size=500),
        visitor.api.list_groups(provider_id, page_size=500),
    )
    return await render(
        visitor,
        "groups/relationships.html",
        {
            "provider_id": provider_id,
            "relationships": page["items"],
            "more": bool(page.get("next_page_token")),
            "group_names": {g["id"]: g["name"] for g in groups["items"]},
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
    employees = await visitor.api.list_employees(provider_id, page_size=500)
    groups = await visitor.api.list_groups(provider_id, page_size=500)
    return await render(
        visitor,
        "groups/employees.html",
        {
            "provider_id": provider_id,
            "employees": employees["items"],
            "groups": groups["items"],
            "roles": [(r, visitor.t(f"role.{r}")) for r in ROLES],
            "chosen": chosen,
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/providers/{provider_id}/employees", response_class=HTMLResponse)
async def employees_page(visitor: CurrentVisitor, provider_id: str, group_id: str = "") -> Response:
    form = FormState(values={"group_id": group_id, "role": "read_only"})
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
    """ "Tous" selects every employee listed, server-side, so that it needs no script."""
    if single.get("all_employees"):
        employees = await visitor.api.list_employees(provider_id, page_size=500)
        return [e["id"] for e in employees["items"]]
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
            provider_id, {**body, "confirmation": single.get("confirmation", "")}
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


async def _requests(visitor: Visitor, provider_id: str) -> list[ProcessRequest]:
    page = await visitor.api.list_process_requests(provider_id, page_size=50)
    return page["items"]


@router.get("/providers/{provider_id}/process-requests", response_class=HTMLResponse)
async def requests_page(visitor: CurrentVisitor, provider_id: str, highlight: str = "") -> Response:
    requests = await _requests(visitor, provider_id)
    return await render(
        visitor,
        "groups/requests.html",
        {
            "provider_id": provider_id,
            "requests": requests,
            "running": _running(requests),
            "highlight": highlight,
            "form": FormState(),
        },
    )


@router.get("/providers/{provider_id}/process-requests/table", response_class=HTMLResponse)
async def requests_table(
    visitor: CurrentVisitor, provider_id: str, highlight: str = ""
) -> Response:
    """The polled fragment: once nothing runs it comes back without its trigger, so it stops."""
    requests = await _requests(visitor, provider_id)
    return await render(
        visitor,
        "groups/_requests.html",
        {
            "provider_id": provider_id,
            "requests": requests,
            "running": _running(requests),
            "highlight": highlight,
        },
    )


async def _request_context(
    visitor: Visitor, provider_id: str, request_id: str
) -> dict[str, object]:
    request = await visitor.api.get_process_request(provider_id, request_id)
    failures = await visitor.api.list_process_request_failures(
        provider_id, request_id, page_size=100
    )
    return {
        "provider_id": provider_id,
        "pr": request,
        "running": request["status"] in _RUNNING,
        "failures": failures["items"],
        "failures_more": bool(failures.get("next_page_token")),
    }


@router.get("/providers/{provider_id}/process-requests/{request_id}", response_class=HTMLResponse)
async def request_page(visitor: CurrentVisitor, provider_id: str, request_id: str) -> Response:
    context = await _request_context(visitor, provider_id, request_id)
    context["form"] = FormState()
    return await render(visitor, "groups/request.html", context)


@router.get(
    "/providers/{provider_id}/process-requests/{request_id}/progress",
    response_class=HTMLResponse,
)
async def request_progress(visitor: CurrentVisitor, provider_id: str, request_id: str) -> Response:
    context = await _request_context(visitor, provider_id, request_id)
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
        context = await _request_context(visitor, provider_id, request_id)
        context["form"] = FormState.refused(visitor.locale, {}, problem, {})
        return await render(visitor, "groups/request.html", context, status_code=400)
    flash(visitor.request, "groups.retried")
    return redirect(f"/providers/{provider_id}/process-requests/{retried['id']}")
