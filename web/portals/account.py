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
from web.i18n import register
from web.pages import form_values, redirect, render, safe_next
from web.problems import FormState
from web.session import Visitor

MESSAGES = {
    "app.name": ("Guichet", "Guichet"),
    "app.skip": ("Aller au contenu", "Skip to content"),
    "app.language": ("Langue", "Language"),
    "app.menu": ("Menu principal", "Main menu"),
    "account.sign_in": ("Se connecter", "Sign in"),
    "account.sign_out": ("Se déconnecter", "Sign out"),
    "account.username": ("Pseudo", "Username"),
    "account.password": ("Mot de passe", "Password"),
    "account.forgot": ("Mot de passe oublié ?", "Forgot your password?"),
    "account.no_account": ("Pas encore de compte ?", "No account yet?"),
    "account.register": ("Créer un compte", "Create an account"),
    "account.organisation_id": ("Identifiant de l'organisation", "Organisation id"),
    "account.organisation_help": (
        "Il figure dans le lien d'inscription reçu de votre organisation.",
        "It is in the registration link your organisation sent you.",
    ),
    "account.email": ("Adresse e-mail", "E-mail address"),
    "account.first_name": ("Prénom", "First name"),
    "account.last_name": ("Nom", "Last name"),
    "account.phone": ("Téléphone", "Phone"),
    "account.address_line": ("Adresse", "Address"),
    "account.postal_code": ("Code postal", "Postal code"),
    "account.city": ("Ville", "City"),
    "account.birth_date": ("Date de naissance", "Birth date"),
    "account.registered": (
        "Compte créé. Un e-mail de confirmation vous a été envoyé : "
        "cliquez sur son lien, puis connectez-vous pour compléter votre profil.",
        "Account created. A confirmation e-mail is on its way: follow its link, then sign in "
        "to complete your profile.",
    ),
    "account.verify_title": ("Confirmation de l'adresse e-mail", "E-mail confirmation"),
    "account.verified": (
        "Adresse e-mail confirmée. Vous pouvez vous connecter.",
        "E-mail address confirmed. You can sign in.",
    ),
    "account.verify_failed": (
        "Ce lien n'est plus valable. Demandez un nouvel e-mail de confirmation.",
        "This link is no longer valid. Ask for a new confirmation e-mail.",
    ),
    "account.verify_confirm": ("Confirmer mon adresse", "Confirm my address"),
    "account.resend": ("Renvoyer l'e-mail de confirmation", "Send the confirmation e-mail again"),
    "account.resent": (
        "Si ce compte attend une confirmation, un nouvel e-mail vient d'être envoyé.",
        "If this account awaits a confirmation, a new e-mail is on its way.",
    ),
    "account.forgot_title": ("Mot de passe oublié", "Forgotten password"),
    "account.login": ("Pseudo ou adresse e-mail", "Username or e-mail address"),
    "account.forgot_send": ("Envoyer le lien", "Send the link"),
    "account.forgot_sent": (
        "Si un compte correspond, un lien de réinitialisation vient d'être envoyé.",
        "If an account matches, a reset link is on its way.",
    ),
    "account.reset_title": ("Nouveau mot de passe", "New password"),
    "account.new_password": ("Nouveau mot de passe", "New password"),
    "account.reset_done": (
        "Mot de passe changé. Connectez-vous avec le nouveau.",
        "Password changed. Sign in with the new one.",
    ),
    "account.profile_title": ("Mon profil", "My profile"),
    "account.save": ("Enregistrer", "Save"),
    "account.profile_saved": ("Profil enregistré.", "Profile saved."),
    "account.pending": (
        "Votre compte attend la validation d'un administrateur.",
        "Your account awaits an administrator's validation.",
    ),
    "account.email_unverified": (
        "Votre adresse e-mail n'est pas encore confirmée.",
        "Your e-mail address is not confirmed yet.",
    ),
    "account.profile_incomplete": (
        "Complétez vos informations personnelles pour un accès complet.",
        "Complete your personal information for full access.",
    ),
    "home.title": ("Mes portails", "My portals"),
    "home.welcome": ("Bonjour {name}", "Hello {name}"),
    "home.none": (
        "Aucun portail pour l'instant : votre compte n'a pas encore de rôle.",
        "No portal yet: your account has no role so far.",
    ),
}
register(MESSAGES)

# Added for the registration journey (issue 25); moved to the catalogs with the rest.
register(
    {
        "account.invited": (
            "Vous créez votre compte auprès de {name}.",
            "You are creating your account with {name}.",
        ),
        "account.invitation_none": (
            "Pour créer un compte, ouvrez le lien d'inscription que votre organisation vous a "
            "envoyé (association, atelier, partenaire…). Vous ne l'avez pas ? Demandez-le à "
            "son administrateur.",
            "To create an account, open the registration link your organisation sent you "
            "(association, workshop, partner…). You do not have it? Ask its administrator.",
        ),
        "account.invitation_invalid": (
            "Ce lien d'inscription n'est pas valable : demandez un nouveau lien à "
            "l'administrateur de votre organisation.",
            "This registration link is not valid: ask your organisation's administrator for a "
            "new one.",
        ),
        "account.have_account": ("Vous avez déjà un compte ?", "Already have an account?"),
        "account.username_help": (
            "Le nom que vous taperez pour vous connecter, par exemple dupont.marie.",
            "The name you will type to sign in, for example dupont.marie.",
        ),
        "account.password_help": (
            "Au moins 12 caractères ; une courte phrase est plus facile à retenir.",
            "At least 12 characters; a short sentence is easier to remember.",
        ),
        "account.next_title": ("Votre compte est créé", "Your account is created"),
        "account.next_verify": (
            "Ouvrez l'e-mail que nous venons de vous envoyer et suivez son lien pour confirmer "
            "votre adresse.",
            "Open the e-mail we have just sent you and follow its link to confirm your address.",
        ),
        "account.next_profile": (
            "Connectez-vous et complétez votre profil : téléphone, adresse, date de naissance.",
            "Sign in and complete your profile: phone, address, birth date.",
        ),
        "account.next_validation": (
            "Un administrateur de votre organisation valide alors votre compte ; un e-mail vous "
            "le dit.",
            "An administrator of your organisation then validates your account; an e-mail "
            "tells you.",
        ),
        "account.no_mail": (
            "Pas reçu l'e-mail ? Le renvoyer",
            "No e-mail received? Send it again",
        ),
        "account.verified_next": (
            "Prochaine étape : connectez-vous pour compléter votre profil.",
            "Next step: sign in to complete your profile.",
        ),
        "account.resend_help": (
            "Indiquez votre pseudo : si votre adresse attend une confirmation, un nouvel e-mail "
            "vous est envoyé.",
            "Give your username: if your address awaits a confirmation, a new e-mail is sent.",
        ),
        "account.email_unverified_help": (
            "Suivez le lien de l'e-mail envoyé à {email}.",
            "Follow the link of the e-mail sent to {email}.",
        ),
        "account.email_missing": (
            "Votre compte n'a pas d'adresse e-mail : demandez à l'administrateur de votre "
            "organisation de l'ajouter.",
            "Your account has no e-mail address: ask your organisation's administrator to add it.",
        ),
        "account.missing_list": (
            "Il manque à votre profil : {items}.",
            "Your profile still lacks: {items}.",
        ),
        "account.complete_profile_link": ("Compléter mon profil", "Complete my profile"),
        "account.waiting_validation": (
            "Votre compte est complet : il attend la validation d'un administrateur de votre "
            "organisation. Un e-mail vous dira quand c'est fait.",
            "Your account is complete: it awaits validation by an administrator of your "
            "organisation. An e-mail will tell you when it is done.",
        ),
        "account.pending_after": (
            "Dès que tout est renseigné, un administrateur de votre organisation pourra valider "
            "votre compte.",
            "Once everything is filled in, an administrator of your organisation can validate "
            "your account.",
        ),
        "missing.email": ("adresse e-mail", "e-mail address"),
        "missing.email_verified": ("confirmation de l'adresse e-mail", "e-mail confirmation"),
    }
)

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
        pair = await visitor.api.issue_token(
            {"username": values.get("username", ""), "password": values.get("password", "")}
        )
    except ApiProblem as problem:
        form = FormState.refused(visitor.locale, values, problem, {})
        form.values.pop("password", None)
        status = problem.status if problem.status in (400, 401, 429) else 502
        return await render(
            visitor,
            "account/sign_in.html",
            {"form": form},
            status_code=status,
            signed_in_nav=False,
        )
    visitor.remember(pair["access_token"], pair["refresh_token"])
    return redirect(safe_next(values.get("next")))


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
    body: ProfileBody = {
        "first_name": values.get("first_name", ""),
        "last_name": values.get("last_name", ""),
    }
    for optional in ("phone", "address_line", "postal_code", "city", "birth_date"):
        body[optional] = values.get(optional) or None
    try:
        await visitor.api.put_profile(body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status == 401:
            raise
        form = FormState.refused(visitor.locale, values, problem, {"profile": "first_name"})
        return await render(visitor, "account/profile.html", {"form": form}, status_code=400)
    flash(visitor.request, "account.profile_saved")
    return redirect("/profile")
