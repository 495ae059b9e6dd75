"""What both membership portals (workshops, associations) share: refusals said in the page's
language with the domain's own reasons, and the posted form turned into the API's bodies."""

from __future__ import annotations

import re

from web.client.transport import ApiProblem
from web.formatting import show_date
from web.i18n import N_, translate
from web.problems import FormState

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


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("problem.already_decided"),
    N_("problem.already_merged"),
    N_("problem.cancelled"),
    N_("problem.concurrent_registration"),
    N_("problem.course_full"),
    N_("problem.course_not_started"),
    N_("problem.course_started"),
    N_("problem.invalid_transition"),
    N_("problem.membership_ended"),
    N_("problem.not_registered"),
    N_("problem.option_held"),
    N_("problem.option_not_held"),
    N_("problem.record_not_empty"),
    N_("problem.removal_window_closed"),
    N_("problem.target_merged"),
    N_("problem.training_full"),
    N_("problem.training_started"),
)
