"""Sign-in's second step and the security page: a second factor (authenticator app, passkeys,
recovery codes), passkey sign-in, an admin's reset of someone's factors, and an organisation's
requirement of a second factor for its roles that act for others (docs/identity.md).

The browser keeps the gateway's device cookie (`guichet_device`, HttpOnly) for the portal; the
passkey ceremonies run in `static/passkeys.js`, which asks these routes for the options and posts
the authenticator's answer back in an ordinary form.
"""

from __future__ import annotations

import json
from typing import Any, cast

import segno
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup

from web.client.api import SecondFactorChallenge, TokenPair
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.pages import form_values, redirect, render, safe_next
from web.portals import operator
from web.problems import FormState, summary_message
from web.session import Visitor

router = APIRouter()


# --- sign-in -------------------------------------------------------------------------------------


async def after_sign_in(
    visitor: Visitor, result: TokenPair | SecondFactorChallenge, next_url: str
) -> Response:
    """Tokens: the session starts (and a session missing roles for want of a second factor goes
    to the security page). A ticket: the second step's page."""
    if "ticket" in result:
        return await _second_factor_page(visitor, cast(SecondFactorChallenge, result), next_url)
    visitor.remember(result["access_token"], result["refresh_token"])
    factors = await visitor.api.get_second_factors()
    if factors["withheld_roles"]:
        return redirect("/account/security")
    return redirect(safe_next(next_url))


async def _second_factor_page(
    visitor: Visitor,
    challenge: SecondFactorChallenge,
    next_url: str,
    *,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    return await render(
        visitor,
        "account/second_factor.html",
        {
            "challenge": challenge,
            "next": safe_next(next_url),
            "form": form or FormState(),
        },
        status_code=status_code,
        signed_in_nav=False,
    )


def _challenge_from(values: dict[str, str]) -> SecondFactorChallenge:
    """The challenge the second step's form carries back (ticket, methods offered)."""
    methods = [m for m in values.get("methods", "").split() if m in _METHODS]
    challenge = {"ticket": values.get("ticket", ""), "methods": methods, "expires_in": 0}
    return cast(SecondFactorChallenge, challenge)


_METHODS = ("totp", "passkey", "recovery_code")


@router.post("/sign-in/second-factor", response_class=HTMLResponse)
async def second_factor(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    challenge = _challenge_from(values)
    body: dict[str, Any] = {"ticket": challenge["ticket"]}
    if values.get("passkey"):
        try:
            body["passkey"] = json.loads(values["passkey"])
        except ValueError:
            body["passkey"] = {}
    elif values.get("recovery_code"):
        body["recovery_code"] = values["recovery_code"]
    else:
        body["code"] = values.get("code", "")
    try:
        pair = await visitor.api.complete_second_factor(body)  # type: ignore[arg-type]
    except ApiProblem as problem:
        if problem.reason == "ticket_invalid":
            form = FormState(summary=visitor.t("signin.expired"))
            return await render(
                visitor,
                "account/sign_in.html",
                {
                    "form": FormState(
                        values={"next": safe_next(values.get("next"))}, summary=form.summary
                    )
                },
                status_code=401,
                signed_in_nav=False,
            )
        if problem.status >= 500 or problem.status not in (400, 401, 403, 429):
            raise
        form = FormState(summary=summary_message(visitor.locale, problem))
        return await _second_factor_page(
            visitor, challenge, values.get("next", "/"), form=form, status_code=problem.status
        )
    return await after_sign_in(visitor, pair, values.get("next", "/"))


@router.post("/sign-in/passkey/options")
async def passkey_options(visitor: CurrentVisitor) -> Response:
    """For static/passkeys.js: the options of navigator.credentials.get()."""
    values = await form_values(visitor.request)
    try:
        answer = await visitor.api.passkey_options({"ticket": values.get("ticket") or None})
    except ApiProblem as problem:
        return JSONResponse({"error": summary_message(visitor.locale, problem)}, problem.status)
    return JSONResponse(answer["options"])


@router.post("/sign-in/passkey", response_class=HTMLResponse)
async def passkey_sign_in(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        credential = json.loads(values.get("passkey") or "{}")
    except ValueError:
        credential = {}
    try:
        pair = await visitor.api.passkey_sign_in({"credential": credential})
    except ApiProblem as problem:
        if problem.status >= 500:
            raise
        form = FormState(
            values={"next": safe_next(values.get("next"))},
            summary=summary_message(visitor.locale, problem),
        )
        return await render(
            visitor,
            "account/sign_in.html",
            {"form": form},
            status_code=problem.status,
            signed_in_nav=False,
        )
    return await after_sign_in(visitor, pair, values.get("next", "/"))


# --- the security page ---------------------------------------------------------------------------


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code (the page's CSP allows no external image)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, title="otpauth", dark="#111")
    return Markup(svg)  # noqa: S704 - segno builds the SVG from the URI's modules only


async def _security_page(
    visitor: Visitor,
    *,
    form: FormState | None = None,
    enrolment: dict[str, str] | None = None,
    codes: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    factors = await visitor.api.get_second_factors()
    return await render(
        visitor,
        "account/security.html",
        {
            "factors": factors,
            "withheld": ", ".join(visitor.t(f"role.{role}") for role in factors["withheld_roles"]),
            "form": form or FormState(),
            "enrolment": enrolment,
            "qr": qr_svg(enrolment["otpauth_uri"]) if enrolment else None,
            "codes": codes,
        },
        status_code=status_code,
    )


async def _refused(visitor: Visitor, problem: ApiProblem, **context: Any) -> Response:
    if problem.status in (401, 404) or problem.status >= 500:
        raise problem
    form = FormState(summary=summary_message(visitor.locale, problem))
    return await _security_page(visitor, form=form, status_code=problem.status, **context)


@router.get("/account/security", response_class=HTMLResponse)
async def security_page(visitor: CurrentVisitor) -> Response:
    await visitor.me()
    return await _security_page(visitor)


@router.post("/account/security/totp", response_class=HTMLResponse)
async def begin_totp(visitor: CurrentVisitor) -> Response:
    try:
        enrolment = await visitor.api.begin_totp()
    except ApiProblem as problem:
        return await _refused(visitor, problem)
    return await _security_page(
        visitor,
        enrolment={"secret": enrolment["secret"], "otpauth_uri": enrolment["otpauth_uri"]},
    )


@router.post("/account/security/totp/confirm", response_class=HTMLResponse)
async def confirm_totp(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    enrolment = {"secret": values.get("secret", ""), "otpauth_uri": values.get("otpauth_uri", "")}
    try:
        answer = await visitor.api.confirm_totp({"code": values.get("code", "")})
    except ApiProblem as problem:
        return await _refused(visitor, problem, enrolment=enrolment)
    await visitor.renew()  # the session used the new factor: its roles come back now
    form = FormState(done=visitor.t("security.totp_added"))
    return await _security_page(visitor, form=form, codes=answer["recovery_codes"] or None)


@router.post("/account/security/totp/remove", response_class=HTMLResponse)
async def remove_totp(visitor: CurrentVisitor) -> Response:
    try:
        await visitor.api.remove_totp()
    except ApiProblem as problem:
        return await _refused(visitor, problem)
    return await _security_page(visitor, form=FormState(done=visitor.t("security.totp_removed")))


@router.post("/account/security/recovery-codes", response_class=HTMLResponse)
async def new_recovery_codes(visitor: CurrentVisitor) -> Response:
    try:
        answer = await visitor.api.regenerate_recovery_codes()
    except ApiProblem as problem:
        return await _refused(visitor, problem)
    return await _security_page(visitor, codes=answer["recovery_codes"])


@router.post("/account/security/passkeys/options")
async def passkey_registration_options(visitor: CurrentVisitor) -> Response:
    """For static/passkeys.js: the options of navigator.credentials.create()."""
    try:
        answer = await visitor.api.passkey_registration_options()
    except ApiProblem as problem:
        return JSONResponse({"error": summary_message(visitor.locale, problem)}, problem.status)
    return JSONResponse(answer["options"])


@router.post("/account/security/passkeys", response_class=HTMLResponse)
async def register_passkey(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    try:
        credential = json.loads(values.get("passkey") or "{}")
    except ValueError:
        credential = {}
    try:
        answer = await visitor.api.register_passkey(
            {"credential": credential, "name": values.get("name", "")}
        )
    except ApiProblem as problem:
        return await _refused(visitor, problem)
    await visitor.renew()
    form = FormState(done=visitor.t("security.passkey_added"))
    return await _security_page(visitor, form=form, codes=answer["recovery_codes"] or None)


@router.post("/account/security/passkeys/{passkey_id}/remove", response_class=HTMLResponse)
async def remove_passkey(visitor: CurrentVisitor, passkey_id: str) -> Response:
    try:
        await visitor.api.remove_passkey(passkey_id)
    except ApiProblem as problem:
        return await _refused(visitor, problem)
    form = FormState(done=visitor.t("security.passkey_removed"))
    return await _security_page(visitor, form=form)


# --- admins --------------------------------------------------------------------------------------


@router.post("/accounts/{user_id}/second-factors/reset", response_class=HTMLResponse)
async def reset_second_factors(visitor: CurrentVisitor, user_id: str) -> Response:
    try:
        await visitor.api.reset_second_factors(user_id)
    except ApiProblem as problem:
        if problem.status in (401, 404) or problem.status >= 500:
            raise
        return await operator.account_page_with(
            visitor, user_id, refused=summary_message(visitor.locale, problem), status_code=403
        )
    return await operator.account_page_with(
        visitor, user_id, done=visitor.t("admin.second_factor_was_reset")
    )


@router.post("/organisations/{organisation_id}/second-factor-policy", response_class=HTMLResponse)
async def set_policy(visitor: CurrentVisitor, organisation_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.set_second_factor_policy(
            organisation_id, {"required": values.get("required") == "true"}
        )
    except ApiProblem as problem:
        if problem.status in (401, 404) or problem.status >= 500:
            raise
        return await operator.accounts_page_with(
            visitor,
            organisation_id,
            refused=summary_message(visitor.locale, problem),
            status_code=problem.status,
        )
    return await operator.accounts_page_with(
        visitor, organisation_id, done=visitor.t("admin.policy_saved")
    )
