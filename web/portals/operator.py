"""Account administration (seeds 002 and 003): an organisation's admin validates the accounts
waiting for it, finds a member by name, completes a missing e-mail, sends a reset link (never a
password), grants and revokes roles and reads the account's audit. The operator (ops_admin) does
the same for every organisation, and recovers a partner's forgotten username after checking
their identity."""

from __future__ import annotations

from functools import partial
from typing import cast

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import RoleName, User
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.i18n import N_
from web.pages import form_values, missing_label, redirect, render
from web.paging import asked, paged
from web.problems import FormState, summary_message
from web.session import Visitor

router = APIRouter()

# The roles an organisation's admin may hand out, by kind (identity checks them again).
_ROLES_BY_KIND = {
    "service_provider": (
        "business_account_manager",
        "program_account_manager",
        "editor",
        "read_only",
    ),
    "client_business": (
        "business_account_manager",
        "program_account_manager",
        "editor",
        "read_only",
    ),
    "association": ("association_admin", "member"),
    "delivery_partner": ("partner_manager",),
    "workshop": ("workshop_owner",),
    "erp_customer": ("customer_user",),
    "operator": ("support_agent", "ops_admin"),
}


# Kinds whose people sign up themselves through an invitation link (identity decides, and
# refuses the others with `self_registration_closed`); the page offers the link only to these.
_SELF_REGISTRATION_KINDS = {
    "association",
    "delivery_partner",
    "workshop",
    "erp_customer",
    "client_business",
}


async def _accounts_page(
    visitor: Visitor,
    organisation_id: str,
    *,
    search: FormState | None = None,
    create: FormState | None = None,
    done: str | None = None,
    refused: str | None = None,
    refusal: str | None = None,
    status_code: int = 200,
) -> Response:
    organisation = await visitor.organisation(organisation_id)
    # Three lists page apart (each its own query parameter); a page rendered after a form's
    # post shows their first pages, and its links lead to the accounts page itself.
    here = f"/organisations/{organisation_id}/accounts"
    url = visitor.request.url
    pending, pending_pager = await paged(
        url,
        partial(visitor.api.accounts_to_validate, organisation_id),
        asked(visitor.request, "pending_page"),
        param="pending_page",
        path=here,
    )
    incomplete, incomplete_pager = await paged(
        url,
        partial(visitor.api.accounts_to_validate, organisation_id, incomplete=True),
        asked(visitor.request, "incomplete_page"),
        param="incomplete_page",
        path=here,
    )
    search = search or FormState()
    results: list[User] | None = None
    results_pager = None
    criteria = {k: search.values.get(k, "").strip() for k in ("last_name", "first_name", "login")}
    if any(criteria.values()):
        found, results_pager = await paged(
            url,
            partial(
                visitor.api.search_accounts,
                organisation_id,
                last_name=criteria["last_name"] or None,
                first_name=criteria["first_name"] or None,
                login=criteria["login"] or None,
            ),
            asked(visitor.request, "results_page"),
            param="results_page",
            path=here,
        )
        results = found["items"]
    invitation = None
    if organisation["kind"] in _SELF_REGISTRATION_KINDS:
        settings = visitor.request.app.state.settings
        base = (settings.public_base_url or str(visitor.request.base_url)).rstrip("/")
        invitation = f"{base}/register?organisation={organisation_id}"
    return await render(
        visitor,
        "operator/accounts.html",
        {
            "organisation": organisation,
            "pending": pending["items"],
            "pending_pager": pending_pager,
            "incomplete": incomplete["items"],
            "incomplete_pager": incomplete_pager,
            "search": search,
            "results": results,
            "results_pager": results_pager,
            "create": create or FormState(),
            "roles": _ROLES_BY_KIND.get(organisation["kind"], ()),
            "done": done,
            "refused": refused,
            "invitation": invitation,
            "refusal": refusal,
        },
        status_code=status_code,
    )


@router.get("/organisations/{organisation_id}/accounts", response_class=HTMLResponse)
async def accounts(
    visitor: CurrentVisitor,
    organisation_id: str,
    last_name: str = "",
    first_name: str = "",
    login: str = "",
) -> Response:
    search = FormState(values={"last_name": last_name, "first_name": first_name, "login": login})
    return await _accounts_page(visitor, organisation_id, search=search)


@router.post("/organisations/{organisation_id}/accounts", response_class=HTMLResponse)
async def create_account(visitor: CurrentVisitor, organisation_id: str) -> Response:
    values = await form_values(visitor.request)
    role = values.get("role")
    try:
        created = await visitor.api.create_account(
            organisation_id,
            {
                "username": values.get("username", ""),
                "email": values.get("email") or None,
                "first_name": values.get("first_name", ""),
                "last_name": values.get("last_name", ""),
                "roles": [cast("RoleName", role)] if role else [],
            },
        )
    except ApiProblem as problem:
        if problem.status in (401, 403, 404) or problem.status >= 500:
            raise
        form = FormState.refused(visitor.locale, values, problem, {"roles": "role"})
        return await _accounts_page(visitor, organisation_id, create=form, status_code=400)
    flash(visitor.request, "admin.created_named", username=created["username"])
    return redirect(f"/accounts/{created['id']}")


def missing_text(visitor: Visitor, account: User) -> str:
    """What an account still lacks, as a list a person reads ("téléphone, date de naissance")."""
    return ", ".join(missing_label(item, visitor.t) for item in account["missing"])


@router.post("/accounts/{user_id}/validate", response_class=HTMLResponse)
async def validate(visitor: CurrentVisitor, user_id: str) -> Response:
    values = await form_values(visitor.request)
    organisation_id = values.get("organisation_id", "")
    try:
        account = await visitor.api.validate_account(user_id)
    except ApiProblem as problem:
        if problem.status in (401, 403, 404) or problem.status >= 500:
            raise
        message = summary_message(visitor.locale, problem)
        if problem.reason == "profile_incomplete":
            # Say what is missing, and who must act: the member, in their profile.
            account = await visitor.api.get_account(user_id)
            message = visitor.t(
                "admin.incomplete_refused",
                username=account["username"],
                items=missing_text(visitor, account),
            )
        if values.get("back") == "account" or not organisation_id:
            return await _account_page(visitor, user_id, refusal=message, status_code=409)
        return await _accounts_page(visitor, organisation_id, refusal=message, status_code=409)
    flash(visitor.request, "admin.validated", username=account["username"])
    if values.get("back") == "account" or not organisation_id:
        return redirect(f"/accounts/{user_id}")
    return redirect(f"/organisations/{organisation_id}/accounts")


async def _account_page(
    visitor: Visitor,
    user_id: str,
    *,
    email: FormState | None = None,
    role: FormState | None = None,
    done: str | None = None,
    refused: str | None = None,
    refusal: str | None = None,
    status_code: int = 200,
) -> Response:
    account = await visitor.api.get_account(user_id)
    audit, audit_pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_account_audit, user_id),
        asked(visitor.request),
        path=f"/accounts/{user_id}",
    )
    organisations = [
        await visitor.organisation(organisation_id)
        for organisation_id in dict.fromkeys(
            [m["organisation_id"] for m in account["memberships"]]
            + ([account["organisation_id"]] if account["organisation_id"] else [])
        )
    ]
    roles = sorted({r for o in organisations for r in _ROLES_BY_KIND.get(o["kind"], ())})
    return await render(
        visitor,
        "operator/account.html",
        {
            "account": account,
            "audit": audit["items"],
            "audit_pager": audit_pager,
            "organisations": organisations,
            "roles": roles,
            "email_form": email or FormState(values={"email": account["email"] or ""}),
            "role_form": role or FormState(),
            "done": done,
            "refused": refused,
            "refusal": refusal,
            "missing": missing_text(visitor, account),
        },
        status_code=status_code,
    )


async def account_page_with(
    visitor: Visitor,
    user_id: str,
    *,
    done: str | None = None,
    refused: str | None = None,
    status_code: int = 200,
) -> Response:
    """The account page after an action of another module (security.py's reset)."""
    return await _account_page(
        visitor, user_id, done=done, refused=refused, status_code=status_code
    )


async def accounts_page_with(
    visitor: Visitor,
    organisation_id: str,
    *,
    done: str | None = None,
    refused: str | None = None,
    status_code: int = 200,
) -> Response:
    """The organisation's accounts page after an action of another module (the policy)."""
    return await _accounts_page(
        visitor, organisation_id, done=done, refused=refused, status_code=status_code
    )


@router.get("/accounts/{user_id}", response_class=HTMLResponse)
async def account_page(visitor: CurrentVisitor, user_id: str) -> Response:
    return await _account_page(visitor, user_id)


@router.post("/accounts/{user_id}/email", response_class=HTMLResponse)
async def set_email(visitor: CurrentVisitor, user_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.set_email(user_id, {"email": values.get("email", "")})
    except ApiProblem as problem:
        if problem.status in (401, 403, 404) or problem.status >= 500:
            raise
        form = FormState.refused(visitor.locale, values, problem, {})
        return await _account_page(visitor, user_id, email=form, status_code=400)
    flash(visitor.request, "admin.email_saved")
    return redirect(f"/accounts/{user_id}")


@router.post("/accounts/{user_id}/password-reset", response_class=HTMLResponse)
async def send_reset(visitor: CurrentVisitor, user_id: str) -> Response:
    await visitor.api.send_password_reset(user_id)
    flash(visitor.request, "admin.reset_sent")
    return redirect(f"/accounts/{user_id}")


@router.post("/accounts/{user_id}/roles", response_class=HTMLResponse)
async def grant_role(visitor: CurrentVisitor, user_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.grant_role(
            user_id,
            {
                "organisation_id": values.get("organisation_id", ""),
                # As chosen; the gateway refuses a name that is no role (field `role`).
                "role": cast("RoleName", values.get("role", "")),
            },
        )
    except ApiProblem as problem:
        if problem.status in (401, 403, 404) or problem.status >= 500:
            raise
        form = FormState.refused(visitor.locale, values, problem, {})
        return await _account_page(visitor, user_id, role=form, status_code=400)
    flash(visitor.request, "admin.role_granted")
    return redirect(f"/accounts/{user_id}")


@router.post(
    "/accounts/{user_id}/roles/{organisation_id}/{role}/revoke", response_class=HTMLResponse
)
async def revoke_role(
    visitor: CurrentVisitor, user_id: str, organisation_id: str, role: str
) -> Response:
    await visitor.api.revoke_role(user_id, organisation_id, role)
    flash(visitor.request, "admin.role_revoked")
    return redirect(f"/accounts/{user_id}")


@router.get("/operator", response_class=HTMLResponse)
async def operator_home(visitor: CurrentVisitor, kind: str = "", page_token: str = "") -> Response:
    page, pager = await paged(
        visitor.request.url,
        partial(
            visitor.api.list_organisations,
            kind=kind or None,  # type: ignore[arg-type]  # the gateway checks it: 400 if unknown
        ),
        page_token,
    )
    return await render(
        visitor,
        "operator/home.html",
        {
            "organisations": page["items"],
            "pager": pager,
            "kind": kind,
            "kinds": list(_ROLES_BY_KIND),
            "recovery": FormState(),
        },
    )


@router.post("/operator/username-recovery", response_class=HTMLResponse)
async def username_recovery(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.recover_username(
            {
                "email": values.get("email", ""),
                "verification_reference": values.get("verification_reference", ""),
            }
        )
        form = FormState(done=visitor.t("operator.recovery_sent"))
        status = 200
    except ApiProblem as problem:
        if problem.status in (401, 403) or problem.status >= 500:
            raise
        form = FormState.refused(visitor.locale, values, problem, {})
        status = 400
    page, pager = await paged(
        visitor.request.url, visitor.api.list_organisations, "", path="/operator"
    )
    return await render(
        visitor,
        "operator/home.html",
        {
            "organisations": page["items"],
            "pager": pager,
            "kind": "",
            "kinds": list(_ROLES_BY_KIND),
            "recovery": form,
        },
        status_code=status,
    )


# Message ids this module builds at run time, declared for the extraction.


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("admin.created_named"),
    N_("admin.status.active"),
    N_("admin.status.disabled"),
    N_("admin.status.pending"),
    N_("audit.email.verified"),
    N_("audit.email_verification.sent"),
    N_("audit.login.failed"),
    N_("audit.login.succeeded"),
    N_("audit.password_reset.sent"),
    N_("audit.password_reset.used"),
    N_("audit.role.granted"),
    N_("audit.role.revoked"),
    N_("audit.user.created"),
    N_("audit.user.email_set"),
    N_("audit.user.registered"),
    N_("audit.user.validated"),
    N_("audit.username.recovered"),
    N_("operator.kind.association"),
    N_("operator.kind.client_business"),
    N_("operator.kind.delivery_partner"),
    N_("operator.kind.erp_customer"),
    N_("operator.kind.operator"),
    N_("operator.kind.service_provider"),
    N_("operator.kind.workshop"),
    N_("problem.account_disabled"),
    N_("problem.already_validated"),
    N_("problem.email_present"),
    N_("problem.fee_unpaid"),
    N_("problem.profile_incomplete"),
)
