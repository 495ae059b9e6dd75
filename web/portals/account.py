"""Identity's pages: sign-in and out, registration, e-mail verification, password reset, the
profile, the home page (the visitor's portals) and the language switch."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import ProfileBody
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.pages import form_values, redirect, render, safe_next
from web.portals import security
from web.problems import FormState

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


@router.get("/register", response_class=HTMLResponse)
async def register_page(visitor: CurrentVisitor, organisation: str = "") -> Response:
    form = FormState(values={"organisation_id": organisation})
    return await render(visitor, "account/register.html", {"form": form}, signed_in_nav=False)


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
        form = FormState.refused(visitor.locale, values, problem, {})
        form.values.pop("password", None)
        return await render(
            visitor,
            "account/register.html",
            {"form": form},
            status_code=400 if problem.status < 500 else 502,
            signed_in_nav=False,
        )
    done = FormState(done=visitor.t("account.registered"))
    return await render(visitor, "account/register.html", {"form": done}, signed_in_nav=False)


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
    return await render(visitor, "account/verify_email.html", {"form": form}, signed_in_nav=False)


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
    form = FormState(values=values, done=visitor.t("account.profile_saved"))
    return await render(visitor, "account/profile.html", {"form": form})
