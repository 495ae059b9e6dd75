"""Account administration (seeds 002 and 003): an organisation's admin validates the accounts
waiting for it, finds a member by name, completes a missing e-mail, sends a reset link (never a
password), grants and revokes roles and reads the account's audit. The operator (ops_admin) does
the same for every organisation, and recovers a partner's forgotten username after checking
their identity."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import User
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.i18n import register
from web.pages import form_values, missing_label, redirect, render
from web.problems import FormState, summary_message
from web.session import Visitor

MESSAGES = {
    "admin.accounts_title": ("Comptes de {name}", "Accounts of {name}"),
    "admin.to_validate": ("Comptes à valider", "Accounts to validate"),
    "admin.to_validate_none": (
        "Aucun compte complet n'attend de validation.",
        "No complete account is waiting for validation.",
    ),
    "admin.validate": ("Valider", "Validate"),
    "admin.validated": ("Compte de {username} validé.", "Account of {username} validated."),
    "admin.search": ("Rechercher un membre", "Find a member"),
    "admin.search_button": ("Rechercher", "Search"),
    "admin.results": ("Résultats", "Results"),
    "admin.no_results": ("Aucun membre ne correspond.", "No member matches."),
    "admin.name": ("Nom", "Name"),
    "admin.status": ("Statut", "Status"),
    "admin.status.pending": ("En attente", "Pending"),
    "admin.status.active": ("Actif", "Active"),
    "admin.status.disabled": ("Désactivé", "Disabled"),
    "admin.email_missing": ("(aucune)", "(none)"),
    "admin.verified": ("confirmée", "confirmed"),
    "admin.unverified": ("non confirmée", "not confirmed"),
    "admin.complete": ("Informations complètes", "Information complete"),
    "admin.incomplete": ("Informations incomplètes", "Information incomplete"),
    "admin.account_title": ("Compte {username}", "Account {username}"),
    "admin.set_email": ("Compléter ou corriger l'e-mail", "Complete or correct the e-mail"),
    "admin.email_saved": ("Adresse e-mail enregistrée.", "E-mail address saved."),
    "admin.send_reset": ("Envoyer un lien de réinitialisation", "Send a password reset link"),
    "admin.reset_sent": (
        "Un lien de réinitialisation a été envoyé au membre.",
        "A password reset link was sent to the member.",
    ),
    "admin.roles": ("Rôles", "Roles"),
    "admin.role": ("Rôle", "Role"),
    "admin.organisation": ("Organisation", "Organisation"),
    "admin.grant": ("Attribuer le rôle", "Grant the role"),
    "admin.revoke": ("Retirer", "Revoke"),
    "admin.role_granted": ("Rôle attribué.", "Role granted."),
    "admin.role_revoked": ("Rôle retiré.", "Role revoked."),
    "admin.audit": ("Historique du compte", "Account history"),
    "admin.when": ("Quand", "When"),
    "admin.event": ("Événement", "Event"),
    "admin.create": ("Créer un compte", "Create an account"),
    "admin.created": (
        "Compte créé : la personne reçoit un lien pour choisir son mot de passe.",
        "Account created: the person receives a link to choose a password.",
    ),
    "audit.email.verified": ("Adresse e-mail confirmée", "E-mail address confirmed"),
    "audit.email_verification.sent": ("E-mail de confirmation envoyé", "Confirmation e-mail sent"),
    "audit.login.failed": ("Connexion refusée", "Sign-in refused"),
    "audit.login.succeeded": ("Connexion", "Signed in"),
    "audit.password_reset.sent": ("Lien de réinitialisation envoyé", "Reset link sent"),
    "audit.password_reset.used": ("Mot de passe réinitialisé", "Password reset"),
    "audit.role.granted": ("Rôle attribué", "Role granted"),
    "audit.role.revoked": ("Rôle retiré", "Role revoked"),
    "audit.user.created": ("Compte créé", "Account created"),
    "audit.user.email_set": ("E-mail complété par un administrateur", "E-mail set by an admin"),
    "audit.user.registered": ("Inscription", "Registered"),
    "audit.user.validated": ("Compte validé", "Account validated"),
    "audit.username.recovered": ("Pseudo envoyé", "Username sent"),
    "operator.title": ("Opérations", "Operations"),
    "operator.organisations": ("Organisations", "Organisations"),
    "operator.kind": ("Type", "Kind"),
    "operator.kind.service_provider": ("Transitaire / consultant", "Service provider"),
    "operator.kind.client_business": ("Entreprise cliente", "Client business"),
    "operator.kind.association": ("Association", "Association"),
    "operator.kind.delivery_partner": ("Partenaire de livraison", "Delivery partner"),
    "operator.kind.workshop": ("Atelier", "Workshop"),
    "operator.kind.erp_customer": ("Client ERP", "ERP customer"),
    "operator.kind.operator": ("Opérateur", "Operator"),
    "operator.recovery": ("Pseudo oublié d'un partenaire", "A partner's forgotten username"),
    "operator.recovery_help": (
        "Seulement après avoir vérifié l'identité de la personne : notez la référence de la "
        "vérification.",
        "Only after checking the person's identity: write down the verification's reference.",
    ),
    "operator.verification_reference": ("Référence de la vérification", "Verification reference"),
    "operator.recovery_send": ("Envoyer le pseudo", "Send the username"),
    "operator.recovery_sent": (
        "Si un compte correspond, son pseudo vient d'être envoyé à cette adresse.",
        "If an account matches, its username is on its way to that address.",
    ),
    "problem.already_validated": (
        "Ce compte est déjà validé.",
        "This account is already validated.",
    ),
    "problem.profile_incomplete": (
        "Les informations personnelles du compte sont incomplètes.",
        "The account's personal information is incomplete.",
    ),
    "problem.fee_unpaid": (
        "La cotisation de ce membre n'est pas réglée.",
        "This member's fee is not paid.",
    ),
    "problem.email_present": (
        "Ce compte a déjà une adresse e-mail : seul le membre peut la changer.",
        "This account already has an e-mail address: only the member can change it.",
    ),
    "problem.account_disabled": ("Ce compte est désactivé.", "This account is disabled."),
}
register(MESSAGES)

# Added for the validation journey (issue 25); moved to the catalogs with the rest.
register(
    {
        "admin.invitation_title": ("Lien d'inscription", "Registration link"),
        "admin.invitation_help": (
            "Envoyez ce lien aux personnes qui doivent créer leur compte chez {name} : il ouvre "
            "l'inscription à {name}, sans identifiant à recopier.",
            "Send this link to the people who must create their account with {name}: it opens "
            "the registration to {name}, with no id to copy.",
        ),
        "admin.invitation_label": ("Lien à copier", "Link to copy"),
        "admin.to_validate_help": (
            "Ces comptes sont complets : validez-les pour leur ouvrir l'accès.",
            "These accounts are complete: validate them to open their access.",
        ),
        "admin.to_validate_none_yet": (
            "Aucun compte complet n'attend de validation.",
            "No complete account is waiting for validation.",
        ),
        "admin.to_complete": (
            "Inscriptions à compléter par les membres",
            "Registrations the members must complete",
        ),
        "admin.to_complete_help": (
            "Ces personnes se sont inscrites mais n'ont pas encore tout fourni ; elles le "
            "complètent elles-mêmes (leur page le leur dit). Vous pourrez ensuite les valider.",
            "These people registered but have not given everything yet; they complete it "
            "themselves (their page tells them what). You can then validate them.",
        ),
        "admin.to_complete_none": (
            "Aucune inscription incomplète.",
            "No incomplete registration.",
        ),
        "admin.more": (
            "Les 50 plus anciens sont affichés : cherchez un membre ci-dessous pour les autres.",
            "The 50 oldest are shown: find a member below for the others.",
        ),
        "admin.missing": ("Il manque", "Missing"),
        "admin.search_login": ("Pseudo ou adresse e-mail", "Username or e-mail address"),
        "admin.search_help": (
            "Le début du nom ou du prénom ; ou un pseudo ou une adresse e-mail complets.",
            "The start of the last or first name; or a whole username or e-mail address.",
        ),
        "admin.profile_state": ("Informations personnelles", "Personal information"),
        "admin.missing_items": ("Incomplètes : il manque {items}", "Incomplete: missing {items}"),
        "admin.incomplete_refused": (
            "Le compte de {username} ne peut pas encore être validé : il manque {items}. "
            "Le membre doit le compléter lui-même ; son espace lui dit quoi faire.",
            "The account of {username} cannot be validated yet: missing {items}. The member "
            "must complete it; their page tells them what to do.",
        ),
        "admin.created_named": (
            "Compte {username} créé : la personne reçoit un lien pour choisir son mot de passe.",
            "Account {username} created: the person receives a link to choose a password.",
        ),
    }
)

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
    refusal: str | None = None,
    status_code: int = 200,
) -> Response:
    organisation = await visitor.organisation(organisation_id)
    pending = await visitor.api.accounts_to_validate(organisation_id, page_size=50)
    incomplete = await visitor.api.accounts_to_validate(
        organisation_id, incomplete=True, page_size=50
    )
    search = search or FormState()
    results: list[User] | None = None
    criteria = {k: search.values.get(k, "").strip() for k in ("last_name", "first_name", "login")}
    if any(criteria.values()):
        found = await visitor.api.search_accounts(
            organisation_id,
            last_name=criteria["last_name"] or None,
            first_name=criteria["first_name"] or None,
            login=criteria["login"] or None,
            page_size=50,
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
            "pending_more": bool(pending.get("next_page_token")),
            "incomplete": incomplete["items"],
            "incomplete_more": bool(incomplete.get("next_page_token")),
            "search": search,
            "results": results,
            "create": create or FormState(),
            "roles": _ROLES_BY_KIND.get(organisation["kind"], ()),
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
                "roles": [role] if role else [],
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
    refusal: str | None = None,
    status_code: int = 200,
) -> Response:
    account = await visitor.api.get_account(user_id)
    audit = await visitor.api.list_account_audit(user_id, page_size=50)
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
            "organisations": organisations,
            "roles": roles,
            "email_form": email or FormState(values={"email": account["email"] or ""}),
            "role_form": role or FormState(),
            "refusal": refusal,
            "missing": missing_text(visitor, account),
        },
        status_code=status_code,
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
            {"organisation_id": values.get("organisation_id", ""), "role": values.get("role", "")},
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
async def operator_home(visitor: CurrentVisitor, kind: str = "") -> Response:
    page = await visitor.api.list_organisations(
        kind=kind or None,  # type: ignore[arg-type]  # checked by the gateway: 400 if unknown
        page_size=100,
    )
    return await render(
        visitor,
        "operator/home.html",
        {
            "organisations": page["items"],
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
    page = await visitor.api.list_organisations(page_size=100)
    return await render(
        visitor,
        "operator/home.html",
        {
            "organisations": page["items"],
            "kind": "",
            "kinds": list(_ROLES_BY_KIND),
            "recovery": form,
        },
        status_code=status,
    )
