"""What both membership portals (workshops, associations) share: refusals said in French with
the domain's own reasons, the posted form turned into the API's bodies, and date and money
filters for the templates."""

from __future__ import annotations

import re
from datetime import date

from web.client.transport import ApiProblem
from web.i18n import register, translate
from web.problems import FormState

MESSAGES = {
    # The membership service's refusal reasons (grep reason= in services/membership/domain).
    "problem.removal_window_closed": (
        "Les options ne peuvent être enlevées qu'une fois par an, à la date de renouvellement "
        "de votre adhésion.",
        "Options can be removed only once a year, at the renewal date of the membership.",
    ),
    "problem.option_held": (
        "L'atelier a déjà cette option.",
        "The workshop already holds this option.",
    ),
    "problem.option_not_held": (
        "L'atelier n'a pas cette option.",
        "The workshop does not hold this option.",
    ),
    "problem.already_decided": (
        "Cette demande a déjà été traitée.",
        "This request was already decided.",
    ),
    "problem.membership_ended": (
        "L'adhésion de cet atelier au programme est terminée.",
        "This workshop's membership has ended.",
    ),
    "problem.course_started": ("Ce cours a déjà commencé.", "This course has already started."),
    "problem.course_full": ("Ce cours est complet.", "This course is full."),
    "problem.course_not_started": (
        "Ce cours n'a pas encore commencé.",
        "This course has not started yet.",
    ),
    "problem.not_registered": (
        "Cette inscription n'est plus active.",
        "This registration is no longer active.",
    ),
    "problem.cancelled": ("Cette inscription a été annulée.", "This registration was cancelled."),
    "problem.invalid_transition": (
        "Ce changement de statut n'est pas possible.",
        "This status change is not possible.",
    ),
    "problem.training_started": (
        "Cette formation a déjà commencé.",
        "This training has already started.",
    ),
    "problem.training_full": ("Cette formation est complète.", "This training is full."),
    # Identity uses the same reason for an account: this one is said by `refused` below.
    "membership.already_validated": (
        "Échec de l'inscription : vous êtes déjà inscrit et validé sur une formation de ce type. "
        "Une nouvelle inscription n'est pas possible.",
        "Registration failed: you are already registered and validated for a training of this "
        "type. A new registration is not possible.",
    ),
    "problem.concurrent_registration": (
        "Une autre inscription est en cours pour cette personne : réessayez.",
        "Another registration for this person is in progress: try again.",
    ),
    "problem.record_not_empty": (
        "Cette fiche client a encore des événements : fusionnez-la d'abord.",
        "This client record still has events: merge it first.",
    ),
    "problem.already_merged": (
        "Cette fiche client a déjà été fusionnée.",
        "This client record was already merged.",
    ),
    "problem.target_merged": (
        "La fiche cible a elle-même été fusionnée : choisissez-en une autre.",
        "The target record was itself merged: choose another one.",
    ),
    "membership.removal_opens": (
        "Prochaine date de renouvellement (retraits possibles) : {date}.",
        "Next renewal date (removals possible): {date}.",
    ),
}
register(MESSAGES)

_OPENS = re.compile(r"open(?:s)? on (?P<date>\d{4}-\d{2}-\d{2})")


def refused(
    locale: str, values: dict[str, str], problem: ApiProblem, fields: dict[str, str] | None = None
) -> FormState:
    """FormState.refused, plus the removal window said in the page's language (the shared
    catalogue knows the generic complaints, bounds included, not this service's)."""
    form = FormState.refused(locale, values, problem, fields or {})
    for api_field, detail in problem.field_errors.items():
        name = api_field.removeprefix("body.")
        name = (fields or {}).get(name, name)
        opens = _OPENS.search(detail)
        if opens:
            form.errors[name] = translate(
                locale, "membership.removal_opens", date=show_date(opens.group("date"), locale)
            )
    if problem.reason == "already_validated":
        form.summary = translate(locale, "membership.already_validated")
    if problem.reason == "removal_window_closed" and "change" not in form.errors:
        # The gateway's 409 carries no field list: the refusal belongs beside "Changement".
        opens = _OPENS.search(str(problem.problem.get("detail") or ""))
        when = show_date(opens.group("date"), locale) if opens else "—"
        form.errors["change"] = translate(locale, "membership.removal_opens", date=when)
    return form


def nested(values: dict[str, str], prefix: str, names: tuple[str, ...]) -> dict[str, str]:
    """The `prefix.name` inputs as the API's nested object; blank optional ones left out."""
    found = {name: values.get(f"{prefix}.{name}", "").strip() for name in names}
    return {name: value for name, value in found.items() if value}


def show_date(value: str | None, locale: str = "fr") -> str:
    """A calendar date from the API (YYYY-MM-DD) as people write it."""
    if not value:
        return "—"
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return value
    return day.strftime("%d/%m/%Y") if locale == "fr" else day.isoformat()


def show_money(amount_cents: int | None, locale: str = "fr") -> str:
    if amount_cents is None:
        return "—"
    text = f"{amount_cents / 100:,.2f}"
    if locale == "fr":
        return text.replace(",", "\u202f").replace(".", ",") + " €"
    return "€" + text
