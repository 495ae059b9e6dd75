"""Identity's pages: sign-in and out, registration, e-mail verification, password reset, the
profile, the home page (the visitor's portals) and the language switch."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import Organisation, ProfileBody
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.i18n import N_
from web.pages import form_values, redirect, render, safe_next
from web.portals import security
from web.problems import FormState
from web.session import Visitor

router = APIRouter()

_PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "address_line",
    "postal_code",
    "city",
    "birth_date",
)


@router.get("/", response_class=HTMLResponse)
async def home(visitor: CurrentVisitor) -> Response:
    if not visitor.signed_in:
        return redirect("/sign-in")
    me = await visitor.me()
    return await render(visitor, "account/home.html", {"user": me})


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(visitor: CurrentVisitor, next: str = "/") -> Response:
    form = FormState(values={"next": safe_next(next)})
    return await render(visitor, "account/sign_in.html", {"form": form}, signed_in_nav=False)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        result = await visitor.api.issue_token(
            {"username": values.get("username", ""), "password": values.get("password", "")}
        )
    except ApiProblem as problem:
        form = FormState.refused(visitor.locale, values, problem, {})
        form.values.pop("password", None)
        status = problem.status if problem.status in (400, 401, 403, 429) else 502
        return await render(
            visitor,
            "account/sign_in.html",
            {"form": form},
            status_code=status,
            signed_in_nav=False,
        )
    # Tokens, or the second step's page (security.py); the device cookie follows either way.
    return await security.after_sign_in(visitor, result, values.get("next", "/"))


@router.post("/sign-out")
async def sign_out(visitor: CurrentVisitor) -> Response:
    if visitor.refresh_token:
        # Already revoked or expired: signing out still forgets it here.
        with contextlib.suppress(ApiProblem):
            await visitor.api.logout({"refresh_token": visitor.refresh_token})
    visitor.forget()
    return redirect("/sign-in")


async def _invitation(visitor: Visitor, organisation_id: str) -> Organisation | None:
    """The organisation an invitation link names, if it accepts sign-up (None otherwise: the
    page then says the link is not valid, and offers no form where an id would be typed)."""
    if not organisation_id:
        return None
    try:
        return await visitor.api.registration_organisation(organisation_id)
    except ApiProblem as problem:
        if problem.status in (400, 404, 409):
            return None
        raise


async def _register_page(
    visitor: Visitor, form: FormState, link: str, status_code: int = 200
) -> Response:
    organisation = await _invitation(visitor, form.value("organisation_id"))
    return await render(
        visitor,
        "account/register.html",
        {"form": form, "organisation": organisation, "link": link},
        status_code=status_code,
        signed_in_nav=False,
    )


@router.get("/register", response_class=HTMLResponse)
async def register_page(
    visitor: CurrentVisitor, organisation: str = "", organisation_id: str = ""
) -> Response:
    """The invitation link's landing page: `?organisation=<id>` (or `organisation_id`) names the
    organisation, shown by name; the person types no id."""
    chosen = (organisation or organisation_id).strip()
    form = FormState(values={"organisation_id": chosen})
    return await _register_page(visitor, form, "invalid" if chosen else "none")


@router.post("/register", response_class=HTMLResponse)
async def register_account(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.register(
            {
                "organisation_id": values.get("organisation_id", ""),
                "username": values.get("username", ""),
                "email": values.get("email", ""),
                "password": values.get("password", ""),
                "first_name": values.get("first_name", ""),
                "last_name": values.get("last_name", ""),
            }
        )
    except ApiProblem as problem:
        if problem.status >= 500:
            raise
        form = FormState.refused(visitor.locale, values, problem, {})
        form.values.pop("password", None)
        return await _register_page(visitor, form, "invalid", status_code=400)
    flash(visitor.request, "account.registered", email=values.get("email", "").strip())
    return redirect("/register/next")


@router.get("/register/next", response_class=HTMLResponse)
async def registered(visitor: CurrentVisitor) -> Response:
    """After sign-up: what happens next, step by step (the confirmation came in the session)."""
    return await render(visitor, "account/registered.html", {}, signed_in_nav=False)


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email_page(visitor: CurrentVisitor, token: str = "") -> Response:
    """The mailed link lands here; confirming takes a click (a POST), so that mail scanners
    that follow links do not spend the token."""
    form = FormState(values={"token": token})
    return await render(visitor, "account/verify_email.html", {"form": form}, signed_in_nav=False)


@router.post("/verify-email", response_class=HTMLResponse)
async def verify_email(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.verify_email({"token": values.get("token", "")})
    except ApiProblem as problem:
        if problem.status >= 500:
            raise
        form = FormState(values=values, summary=visitor.t("account.verify_failed"))
        return await render(
            visitor,
            "account/verify_email.html",
            {"form": form},
            status_code=400,
            signed_in_nav=False,
        )
    form = FormState(done=visitor.t("account.verified"))
    return await render(
        visitor,
        "account/verify_email.html",
        {"form": form, "verified": True},
        signed_in_nav=False,
    )


@router.post("/verify-email/resend", response_class=HTMLResponse)
async def resend_verification(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.resend_verification({"username": values.get("username", "")})
    except ApiProblem as problem:
        form = FormState.refused(visitor.locale, values, problem, {})
        return await render(
            visitor,
            "account/verify_email.html",
            {"form": form},
            status_code=400,
            signed_in_nav=False,
        )
    form = FormState(done=visitor.t("account.resent"))
    return await render(visitor, "account/verify_email.html", {"form": form}, signed_in_nav=False)


@router.get("/forgot-password", response_class=HTMLResponse)
async def forgot_password_page(visitor: CurrentVisitor) -> Response:
    return await render(
        visitor, "account/forgot_password.html", {"form": FormState()}, signed_in_nav=False
    )


@router.post("/forgot-password", response_class=HTMLResponse)
async def forgot_password(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.forgot_password({"login": values.get("login", "")})
    except ApiProblem as problem:
        form = FormState.refused(visitor.locale, values, problem, {})
        return await render(
            visitor,
            "account/forgot_password.html",
            {"form": form},
            status_code=problem.status if problem.status in (400, 429) else 502,
            signed_in_nav=False,
        )
    form = FormState(done=visitor.t("account.forgot_sent"))
    return await render(
        visitor, "account/forgot_password.html", {"form": form}, signed_in_nav=False
    )


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page(visitor: CurrentVisitor, token: str = "") -> Response:
    form = FormState(values={"token": token})
    return await render(visitor, "account/reset_password.html", {"form": form}, signed_in_nav=False)


@router.post("/reset-password", response_class=HTMLResponse)
async def reset_password(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.reset_password(
            {"token": values.get("token", ""), "new_password": values.get("new_password", "")}
        )
    except ApiProblem as problem:
        form = FormState.refused(visitor.locale, values, problem, {})
        form.values.pop("new_password", None)
        return await render(
            visitor,
            "account/reset_password.html",
            {"form": form},
            status_code=400 if problem.status < 500 else 502,
            signed_in_nav=False,
        )
    form = FormState(done=visitor.t("account.reset_done"))
    return await render(visitor, "account/reset_password.html", {"form": form}, signed_in_nav=False)


@router.get("/profile", response_class=HTMLResponse)
async def profile_page(visitor: CurrentVisitor) -> Response:
    me = await visitor.me()
    values = {name: str(me["profile"].get(name) or "") for name in _PROFILE_FIELDS}
    return await render(visitor, "account/profile.html", {"form": FormState(values=values)})


@router.post("/profile", response_class=HTMLResponse)
async def save_profile(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    # Every field is required: one left empty comes back as that field's error, all at once.
    body: ProfileBody = {
        "first_name": values.get("first_name", ""),
        "last_name": values.get("last_name", ""),
        "phone": values.get("phone", ""),
        "address_line": values.get("address_line", ""),
        "postal_code": values.get("postal_code", ""),
        "city": values.get("city", ""),
        "birth_date": values.get("birth_date", ""),
    }
    try:
        await visitor.api.put_profile(body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status == 401:
            raise
        form = FormState.refused(visitor.locale, values, problem, {"profile": "first_name"})
        return await render(visitor, "account/profile.html", {"form": form}, status_code=400)
    flash(visitor.request, "account.profile_saved")
    return redirect("/profile")


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("missing.email"),
    N_("missing.email_verified"),
)
