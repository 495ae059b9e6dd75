"""Gateway problems (RFC 9457) as sentences a person reads, in the page's language, next to the
field they name. Nothing raw reaches the page: no JSON, no stack trace, no internal detail."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from web.client.transport import ApiProblem
from web.i18n import register, translate

MESSAGES = {
    "problem.generic": ("La demande n'a pas abouti.", "The request did not succeed."),
    "problem.invalid_argument": (
        "Certains champs sont à corriger.",
        "Some fields need correcting.",
    ),
    "problem.unauthenticated": (
        "Identifiant ou mot de passe incorrect.",
        "Wrong username or password.",
    ),
    "problem.permission_denied": (
        "Vous n'avez pas le droit de faire cela.",
        "You are not allowed to do this.",
    ),
    "problem.not_found": ("Introuvable, ou pas accessible.", "Not found, or not yours to see."),
    "problem.already_exists": ("Cela existe déjà.", "This already exists."),
    "problem.failed_precondition": (
        "Ce n'est pas possible dans l'état actuel.",
        "This is not possible in the current state.",
    ),
    "problem.invalid_credentials": (
        "Identifiant ou mot de passe incorrect.",
        "Wrong username or password.",
    ),
    "problem.wrong_password": (
        "Identifiant ou mot de passe incorrect.",
        "Wrong username or password.",
    ),
    "problem.aborted": (
        "Quelqu'un a modifié la même chose en même temps : rechargez et réessayez.",
        "Someone changed the same thing at the same time: reload and try again.",
    ),
    "problem.resource_exhausted": (
        "Trop de tentatives : patientez avant de réessayer.",
        "Too many attempts: wait before trying again.",
    ),
    "problem.rate_limited": (
        "Trop de tentatives : patientez avant de réessayer.",
        "Too many attempts: wait before trying again.",
    ),
    "problem.unavailable": (
        "Le service est momentanément indisponible. Réessayez dans un instant.",
        "The service is unavailable for a moment. Try again shortly.",
    ),
    "problem.deadline_exceeded": (
        "Le service n'a pas répondu à temps. Réessayez.",
        "The service did not answer in time. Try again.",
    ),
    "problem.refused": ("Refusé : {detail}", "Refused: {detail}"),
    "problem.internal": (
        "Une erreur inattendue s'est produite. Référence : {request_id}",
        "An unexpected error occurred. Reference: {request_id}",
    ),
    "problem.payload_too_large": ("Le fichier est trop volumineux.", "The file is too large."),
    "field.required": ("Champ obligatoire.", "This field is required."),
    "field.too_short": ("Au moins {n} caractères.", "At least {n} characters."),
    "field.too_long": ("Au plus {n} caractères.", "At most {n} characters."),
    "field.min": ("Au moins {n}.", "At least {n}."),
    "field.max": ("Au plus {n}.", "At most {n}."),
    "field.email": ("Adresse e-mail invalide.", "Not a valid e-mail address."),
    "field.integer": ("Un nombre entier est attendu.", "A whole number is expected."),
    "field.number": ("Un nombre est attendu.", "A number is expected."),
    "field.date": ("Une date est attendue (AAAA-MM-JJ).", "A date is expected (YYYY-MM-DD)."),
    "field.choice": ("Choisissez une des valeurs proposées.", "Choose one of the values offered."),
    "field.other": ("Valeur refusée : {detail}", "{detail}"),
}
register(MESSAGES)

_STATUS_REASON = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    413: "payload_too_large",
    429: "rate_limited",
    503: "unavailable",
    504: "deadline_exceeded",
}

# Reasons that name only the gRPC code: their detail is no more telling than our own sentence.
_GENERIC_REASONS = {"invalid_argument", "unauthenticated", "internal", "unavailable"}

# Pydantic's and our services' common English complaints, recognised to be said in French too.
_KNOWN_DETAILS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b(field required|is required|required field|must not be (empty|blank))", re.I
        ),
        "field.required",
    ),
    (re.compile(r"at least (?P<n>\d+) characters?", re.I), "field.too_short"),
    (re.compile(r"at most (?P<n>\d+) characters?", re.I), "field.too_long"),
    # "greater than or equal" before "greater than", which it contains.
    (re.compile(r"greater than or equal to (?P<n>-?\d+)", re.I), "field.min"),
    (re.compile(r"greater than (?P<n>-?\d+)", re.I), "field.min"),
    (re.compile(r"less than or equal to (?P<n>-?\d+)", re.I), "field.max"),
    (re.compile(r"valid email|e-?mail address", re.I), "field.email"),
    (re.compile(r"valid integer", re.I), "field.integer"),
    (re.compile(r"valid number", re.I), "field.number"),
    (re.compile(r"valid date", re.I), "field.date"),
    (re.compile(r"^Input should be '", re.I), "field.choice"),
)


def field_message(locale: str, detail: str) -> str:
    for pattern, key in _KNOWN_DETAILS:
        match = pattern.search(detail)
        if match:
            return translate(locale, key, **match.groupdict())
    return translate(locale, "field.other", detail=detail)


def summary_message(locale: str, problem: ApiProblem) -> str:
    if problem.status >= 500 and problem.status not in (503, 504):
        reference = problem.problem.get("request_id") or "—"
        return translate(locale, "problem.internal", request_id=reference)
    key = f"problem.{problem.reason}"
    if translate(locale, key) != key:
        return translate(locale, key)
    detail = str(problem.problem.get("detail") or "")
    if detail and problem.status < 500 and problem.reason not in _GENERIC_REASONS:
        return translate(locale, "problem.refused", detail=detail)
    fallback = f"problem.{_STATUS_REASON.get(problem.status, 'generic')}"
    return translate(locale, fallback)


@dataclass
class FormState:
    """What a form shows: the values typed (kept on refusal), field errors and a summary."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    summary: str | None = None
    done: str | None = None
    # Each input's label, as the page's fields register it (web/templates/_forms.html), so that
    # the summary names the field of every error.
    labels: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def labelled(self, name: str, label: str) -> str:
        """Called by each field as it renders: remembers its label (and writes nothing)."""
        self.labels[name] = label
        return ""

    @classmethod
    def refused(
        cls, locale: str, values: dict[str, str], problem: ApiProblem, fields: dict[str, str]
    ) -> FormState:
        """The problem mapped onto the form: `fields` maps the API's field names to inputs."""
        errors: dict[str, str] = {}
        for api_field, detail in problem.field_errors.items():
            name = _input_for(api_field, fields)
            errors.setdefault(name, field_message(locale, detail))
        return cls(values=values, errors=errors, summary=summary_message(locale, problem))


def _input_for(api_field: str, fields: dict[str, str]) -> str:
    """`body.profile.first_name` or `profile.first_name` → the input that carries it."""
    name = api_field.removeprefix("body.")
    if name in fields:
        return fields[name]
    for api_name, input_name in fields.items():
        if name.startswith(api_name + ".") or name.startswith(api_name + "["):
            return input_name
    return name
