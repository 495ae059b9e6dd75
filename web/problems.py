"""Gateway problems (RFC 9457) as sentences a person reads, in the page's language, next to the
field they name. Nothing raw reaches the page: no JSON, no stack trace, no English detail.

A refusal is said by its `reason` (the last segment of the problem `type`): `problem.<reason>`
in the catalogs, or the sentence of its HTTP status when a reason has none. A field violation is
said by its `code` and `params` (`string_too_long` with `max_length`): `field.<code>` in the
catalogs, several codes sharing one text through `FIELD_CODE_TEXTS`. A violation without a code
(a service that does not send one yet) is recognised from its English detail where it can be,
and otherwise gets a plain "check this field": the English sentence itself is never shown.
tests/web/test_problem_texts.py enumerates every reason and code the gateway can answer (the
OpenAPI document's `x-problem-types` and `x-field-codes`) and fails on one without a text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from babel.numbers import format_decimal
from babel.units import format_unit

from web.client.transport import ApiProblem
from web.i18n import N_, has_text, translate

# The sentence of each HTTP status, for a reason without a text of its own.
_STATUS_REASON = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "failed_precondition",
    413: "payload_too_large",
    422: "invalid_argument",
    429: "rate_limited",
    501: "not_implemented",
    503: "unavailable",
    504: "deadline_exceeded",
}

# Field codes that share one text: pydantic's many names for "not a whole number" are one
# sentence to a person. A code not listed here is said by `field.<code>`.
FIELD_CODE_TEXTS: dict[str, str] = {
    # required
    "missing": "missing",
    "missing_argument": "missing",
    "missing_keyword_only_argument": "missing",
    "missing_positional_only_argument": "missing",
    "none_required": "invalid",
    # text
    "string_type": "string_type",
    "string_unicode": "string_type",
    "string_not_ascii": "string_not_ascii",
    "string_too_short": "string_too_short",
    "string_too_long": "string_too_long",
    "string_pattern_mismatch": "string_pattern_mismatch",
    # numbers
    "int_type": "int_parsing",
    "int_parsing": "int_parsing",
    "int_from_float": "int_parsing",
    "int_parsing_size": "int_parsing_size",
    "float_type": "float_parsing",
    "float_parsing": "float_parsing",
    "decimal_type": "float_parsing",
    "decimal_parsing": "float_parsing",
    "fraction_type": "float_parsing",
    "fraction_parsing": "float_parsing",
    "complex_type": "float_parsing",
    "complex_str_parsing": "float_parsing",
    "finite_number": "finite_number",
    "greater_than": "greater_than",
    "greater_than_equal": "greater_than_equal",
    "less_than": "less_than",
    "less_than_equal": "less_than_equal",
    "multiple_of": "multiple_of",
    "decimal_max_digits": "decimal_max_digits",
    "decimal_max_places": "decimal_max_places",
    "decimal_whole_digits": "decimal_max_digits",
    # choices and yes/no
    "enum": "enum",
    "literal_error": "enum",
    "union_tag_invalid": "enum",
    "union_tag_not_found": "enum",
    "bool_type": "bool_parsing",
    "bool_parsing": "bool_parsing",
    # dates and times
    "date_type": "date_parsing",
    "date_parsing": "date_parsing",
    "date_from_datetime_parsing": "date_parsing",
    "date_from_datetime_inexact": "date_parsing",
    "date_past": "date_past",
    "date_future": "date_future",
    "time_type": "time_parsing",
    "time_parsing": "time_parsing",
    "datetime_type": "datetime_parsing",
    "datetime_parsing": "datetime_parsing",
    "datetime_object_invalid": "datetime_parsing",
    "datetime_from_date_parsing": "datetime_parsing",
    "datetime_past": "date_past",
    "datetime_future": "date_future",
    "timezone_naive": "timezone_naive",
    "timezone_aware": "timezone_naive",
    "timezone_offset": "timezone_naive",
    "time_delta_type": "time_delta_parsing",
    "time_delta_parsing": "time_delta_parsing",
    # ids and links
    "uuid_type": "uuid_parsing",
    "uuid_parsing": "uuid_parsing",
    "uuid_version": "uuid_parsing",
    "url_type": "url_parsing",
    "url_parsing": "url_parsing",
    "url_syntax_violation": "url_parsing",
    "url_too_long": "url_too_long",
    "url_scheme": "url_parsing",
    # lists
    "too_short": "too_short",
    "too_long": "too_long",
    "list_type": "list_type",
    "tuple_type": "list_type",
    "set_type": "list_type",
    "frozen_set_type": "list_type",
    "deque_type": "list_type",
    "iterable_type": "list_type",
    "iteration_error": "list_type",
    "set_item_not_hashable": "list_type",
    # files and bytes
    "bytes_type": "bytes_type",
    "bytes_too_short": "bytes_too_short",
    "bytes_too_long": "bytes_too_long",
    "bytes_invalid_encoding": "bytes_type",
    # the body's shape: a client's mistake, never a person's (the portal builds the body)
    "json_invalid": "json_invalid",
    "json_type": "json_invalid",
    "extra_forbidden": "extra_forbidden",
    "model_type": "json_invalid",
    "model_attributes_type": "json_invalid",
    "dataclass_type": "json_invalid",
    "dataclass_exact_type": "json_invalid",
    "named_tuple_type": "json_invalid",
    "dict_type": "json_invalid",
    "frozen_dict_type": "json_invalid",
    "ordered_dict_type": "json_invalid",
    "counter_type": "json_invalid",
    "mapping_type": "json_invalid",
    "arguments_type": "json_invalid",
    "unexpected_keyword_argument": "extra_forbidden",
    "unexpected_positional_argument": "extra_forbidden",
    "multiple_argument_values": "json_invalid",
    "frozen_field": "frozen_field",
    "frozen_instance": "frozen_field",
    "invalid_key": "json_invalid",
    # rules written in code (validators) and pydantic's internal failures: "check this value"
    "value_error": "invalid",
    "assertion_error": "invalid",
    "no_such_attribute": "invalid",
    "get_attribute_error": "invalid",
    "needs_python_object": "invalid",
    "recursion_loop": "json_invalid",
    "recursion_depth_exceeded": "json_invalid",
    "default_factory_not_called": "invalid",
    "is_instance_of": "invalid",
    "is_subclass_of": "invalid",
    "callable_type": "invalid",
    "missing_sentinel_error": "invalid",
    "ellipsis_error": "invalid",
    "invalid": "invalid",
}

# Today's services send violations without a code (the contract's codes are coming): their
# common English complaints are recognised and said by the code they stand for. Order matters
# ("greater than or equal" before "greater than").
_RECOGNISED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I), code)
    for pattern, code in (
        (r"\b(field required|is required|required field|must not be (empty|blank))", "missing"),
        (r"at least (?P<min_length>\d+) characters?", "string_too_short"),
        (r"at most (?P<max_length>\d+) characters?", "string_too_long"),
        (r"\bis too long\b", "too_long_text"),
        (r"greater than or equal to (?P<ge>-?\d+)", "greater_than_equal"),
        (r"greater than (?P<gt>-?\d+)", "greater_than"),
        (r"less than or equal to (?P<le>-?\d+)", "less_than_equal"),
        (r"less than (?P<lt>-?\d+)", "less_than"),
        (r"must be between (?P<ge>-?\d+) and (?P<le>-?\d+)", "between"),
        (r"must be positive", "positive"),
        (r"must not be negative", "not_negative"),
        (r"valid uuid|must be a uuid|is not a valid id", "uuid_parsing"),
        (r"valid email|e-?mail address", "email"),
        (r"valid integer|must be a year", "int_parsing"),
        (r"valid number", "float_parsing"),
        (r"must be a month, YYYY-MM", "month_format"),
        (r"valid date|must be a date", "date_parsing"),
        (r"valid datetime", "datetime_parsing"),
        (r"17 characters, without I, O or Q", "vin_format"),
        (r"is not a phone number", "phone_format"),
        (r"IANA time zone", "time_zone"),
        (r"ISO 4217", "currency_code"),
        (r"must be in the future|must be after today", "in_the_past"),
        (r"must be in the past|must not be in the future|is in the future", "in_the_future"),
        (r"must be after|must not be before", "before_start"),
        (r"letters, digits", "code_format"),
        (r"control characters|NUL characters|printable characters", "control_characters"),
        (r"start or end with spaces", "surrounding_spaces"),
        (r"is listed twice|appears twice", "duplicate"),
        (r"^Input should be '|^must be [a-z_]+(, [a-z_]+)* or [a-z_]+$|is not an? ", "enum"),
    )
)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class FieldError:
    """One field violation of a problem: its path in the request, code, params and detail."""

    field: str
    code: str | None
    detail: str
    params: Mapping[str, Any]


def field_errors(problem: ApiProblem) -> list[FieldError]:
    """Every violation the problem names, in its order."""
    found = []
    for error in problem.problem.get("errors") or ():
        if not isinstance(error, dict):
            continue
        params = error.get("params")
        found.append(
            FieldError(
                field=str(error.get("field", "")),
                code=str(error["code"]) if error.get("code") else None,
                detail=str(error.get("detail", "")),
                params=params if isinstance(params, dict) else {},
            )
        )
    return found


def field_text_key(code: str) -> str:
    """The catalog key that says a field code."""
    return f"field.{FIELD_CODE_TEXTS.get(code, code)}"


def _shown(locale: str, params: Mapping[str, Any]) -> dict[str, str]:
    """Rule parameters as the reader writes them (1 000 in French, 1,000 in English)."""
    shown: dict[str, str] = {}
    for name, value in params.items():
        if isinstance(value, bool):
            shown[name] = str(value)
        elif isinstance(value, int | float):
            shown[name] = format_decimal(value, locale=locale)
        else:
            text = str(value)
            shown[name] = format_decimal(int(text), locale=locale) if text.isdigit() else text
    return shown


# Codes that say only "refused": the English detail beside them may say more (an e-mail address).
_VAGUE_CODES = frozenset({"value_error", "invalid"})

# A format refused by the gateway's pattern, said by what the field is when the field says it.
_PATTERN_TEXTS = {"iban": "iban_checksum"}


def form_field_message(locale: str, error: FieldError, submitted: str | None) -> str:
    """A violation beside the input that carries it: an input left blank is "required" whatever
    rule the blank broke first (a pattern, a minimum length), as a person reads it."""
    if submitted is not None and not submitted.strip():
        return translate(locale, "field.missing")
    last = error.field.rsplit(".", 1)[-1]
    if error.code == "string_pattern_mismatch" and last in _PATTERN_TEXTS:
        return field_message(locale, error.detail, _PATTERN_TEXTS[last], error.params)
    return field_message(locale, error.detail, error.code, error.params)


def field_message(
    locale: str,
    detail: str,
    code: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    """A field violation as a sentence in the locale: by its code (and params) when it has one,
    else recognised from its English detail, else "check this value" (never the detail)."""
    params = dict(params or {})
    if code == "string_too_short" and str(params.get("min_length")) == "1":
        # "At least 1 character" is how pydantic says "required": say it as a person would.
        code = "missing"
    if code is None or code in _VAGUE_CODES or not has_text(locale, field_text_key(code)):
        # A vague code (pydantic's `value_error`) may carry a telling detail: try that first.
        vague = code if code is not None and has_text(locale, field_text_key(code)) else None
        code = vague
        for pattern, recognised in _RECOGNISED:
            match = pattern.search(detail)
            if match:
                code = recognised
                params = {k: v for k, v in match.groupdict().items() if v is not None}
                break
    if code == "string_too_short" and str(params.get("min_length")) == "1":
        # "At least 1 character" is a required text left blank: said as people say it.
        code, params = "missing", {}
    key = field_text_key(code) if code else "field.invalid"
    if not has_text(locale, key):
        key = "field.invalid"
    needed = set(_PLACEHOLDER.findall(translate(locale, key)))
    if not needed <= set(params):
        # The code came without the parameter its sentence names: say the rule without it.
        plain = f"{key}.plain"
        return translate(locale, plain if has_text(locale, plain) else "field.invalid")
    shown = _shown(locale, {name: params[name] for name in needed})
    return translate(locale, key, **shown) if shown else translate(locale, key)


def wait_in_words(locale: str, seconds: int) -> str:
    """A Retry-After as people say it ("3 minutes", "45 seconds"), never shorter than
    the real wait: minutes and hours are rounded up."""
    if seconds < 60:
        amount, unit = max(seconds, 1), "duration-second"
    elif seconds < 7200:
        amount, unit = math.ceil(seconds / 60), "duration-minute"
    else:
        amount, unit = math.ceil(seconds / 3600), "duration-hour"
    return format_unit(amount, unit, length="long", locale=locale)


def _recognised(detail: str) -> bool:
    return any(pattern.search(detail) for pattern, _ in _RECOGNISED)


def summary_message(locale: str, problem: ApiProblem) -> str:
    """The refusal as one sentence: by its reason, else by its HTTP status; a 429 says how long
    to wait (its Retry-After) in words."""
    if problem.status == 429 and problem.retry_after:
        return translate(
            locale, "problem.retry_after", wait=wait_in_words(locale, problem.retry_after)
        )
    if problem.status >= 500 and problem.status not in (501, 503, 504):
        reference = problem.problem.get("request_id") or "—"
        return translate(locale, "problem.internal", request_id=reference)
    key = f"problem.{problem.reason}"
    if has_text(locale, key):
        return translate(locale, key)
    return translate(locale, f"problem.{_STATUS_REASON.get(problem.status, 'generic')}")


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
        for error in field_errors(problem):
            name = _input_for(error.field, fields)
            errors.setdefault(name, form_field_message(locale, error, values.get(name)))
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


# The reasons the gateway answers today (its own and every service's, `reason=` in services/),
# each said by `problem.<reason>`; tests/web/test_problem_texts.py keeps this list complete.
PROBLEM_REASONS = (
    N_("problem.aborted"),
    N_("problem.account_disabled"),
    N_("problem.already_active"),
    N_("problem.already_cancelled"),
    N_("problem.already_checked_in"),
    N_("problem.already_decided"),
    N_("problem.already_exists"),
    N_("problem.already_merged"),
    N_("problem.already_refunded"),
    N_("problem.already_validated"),
    N_("problem.answer_deadline_passed"),
    N_("problem.answer_not_settled"),
    N_("problem.attempt_superseded"),
    N_("problem.cancelled"),
    N_("problem.change_decided"),
    N_("problem.change_open"),
    N_("problem.client_already_grouped"),
    N_("problem.concurrent_registration"),
    N_("problem.consulting_logged"),
    N_("problem.content_too_large"),
    N_("problem.course_full"),
    N_("problem.course_not_started"),
    N_("problem.course_started"),
    N_("problem.deadline_exceeded"),
    N_("problem.decided"),
    N_("problem.disabled"),
    N_("problem.email_missing"),
    N_("problem.email_present"),
    N_("problem.escalation_exists"),
    N_("problem.escalation_open"),
    N_("problem.failed_precondition"),
    N_("problem.fee_unpaid"),
    N_("problem.generic"),
    N_("problem.group_name_deleted"),
    N_("problem.group_name_taken"),
    N_("problem.group_not_found"),
    N_("problem.idempotency_key_in_flight"),
    N_("problem.idempotency_key_reused"),
    N_("problem.internal"),
    N_("problem.invalid_argument"),
    N_("problem.invalid_client"),
    N_("problem.invalid_credentials"),
    N_("problem.invalid_refresh_token"),
    N_("problem.invalid_transition"),
    N_("problem.last_ops_admin"),
    N_("problem.letter_not_sent"),
    N_("problem.link_expired"),
    N_("problem.link_replaced"),
    N_("problem.link_unknown"),
    N_("problem.link_used"),
    N_("problem.membership_ended"),
    N_("problem.membership_unavailable"),
    N_("problem.method_not_allowed"),
    N_("problem.no_contract"),
    N_("problem.no_courier"),
    N_("problem.name_taken"),
    N_("problem.no_escalation"),
    N_("problem.not_a_customer"),
    N_("problem.not_awaiting_answer"),
    N_("problem.not_configured"),
    N_("problem.not_consulting"),
    N_("problem.not_escalated"),
    N_("problem.not_found"),
    N_("problem.not_implemented"),
    N_("problem.not_paid"),
    N_("problem.not_pending"),
    N_("problem.not_ready"),
    N_("problem.not_registered"),
    N_("problem.option_held"),
    N_("problem.option_not_held"),
    N_("problem.order_in_progress"),
    N_("problem.order_not_in_progress"),
    N_("problem.out_of_range"),
    N_("problem.own_second_factor"),
    N_("problem.passkey_challenge_invalid"),
    N_("problem.passkey_invalid"),
    N_("problem.passkey_missing"),
    N_("problem.passkey_present"),
    N_("problem.payload_too_large"),
    N_("problem.period_ended"),
    N_("problem.permission_denied"),
    N_("problem.process_request_not_failed"),
    N_("problem.process_request_not_found"),
    N_("problem.profile_incomplete"),
    N_("problem.program_account_client_mismatch"),
    N_("problem.promotion_active"),
    N_("problem.proof_missing"),
    N_("problem.rate_limited"),
    N_("problem.record_not_empty"),
    N_("problem.refresh_token_expired"),
    N_("problem.refresh_token_reused"),
    N_("problem.refresh_token_revoked"),
    N_("problem.refunded"),
    N_("problem.refused"),
    N_("problem.removal_window_closed"),
    N_("problem.reported"),
    N_("problem.resource_exhausted"),
    N_("problem.second_factor_invalid"),
    N_("problem.second_factor_missing"),
    N_("problem.second_factor_needed"),
    N_("problem.self_registration_closed"),
    N_("problem.store_exists"),
    N_("problem.target_merged"),
    N_("problem.ticket_closed"),
    N_("problem.ticket_invalid"),
    N_("problem.ticket_not_linked"),
    N_("problem.ticket_opened"),
    N_("problem.totp_code_invalid"),
    N_("problem.totp_present"),
    N_("problem.training_full"),
    N_("problem.training_started"),
    N_("problem.transition_not_allowed"),
    N_("problem.unauthenticated"),
    N_("problem.unavailable"),
    N_("problem.unprocessable"),
    N_("problem.unsupported_media_type"),
    N_("problem.wrong_password"),
)

# The services' own rule codes (services/gateway/problem_types.py SERVICE_FIELD_CODES) and
# the gateway's own, each said by `field.<code>`.
SERVICE_FIELD_TEXTS = (
    N_("field.add_and_remove"),
    N_("field.assign_and_unassign"),
    N_("field.business_account_manager"),
    N_("field.channel"),
    N_("field.confirmation"),
    N_("field.content_mismatch"),
    N_("field.content_type"),
    N_("field.does_not_apply"),
    N_("field.duplicate_language"),
    N_("field.duplicate_priority"),
    N_("field.empty_file"),
    N_("field.end_before_start"),
    N_("field.file_too_large"),
    N_("field.iban_checksum"),
    N_("field.inactive_product"),
    N_("field.mixed_script"),
    N_("field.name_to_search"),
    N_("field.not_a_customer"),
    N_("field.not_a_workshop"),
    N_("field.not_an_association"),
    N_("field.not_an_assignable_employee"),
    N_("field.not_below_minimum"),
    N_("field.note_required"),
    N_("field.nothing_to_change"),
    N_("field.opening_hours"),
    N_("field.order_or_period"),
    N_("field.own_organisation"),
    N_("field.one_second_factor"),
    N_("field.operator_channel"),
    N_("field.role_for_another_kind"),
    N_("field.page_token"),
    N_("field.period_too_long"),
    N_("field.phone_digits"),
    N_("field.priorities_missing"),
    N_("field.replacement_required"),
    N_("field.same_product"),
    N_("field.siret_checksum"),
    N_("field.too_far"),
    N_("field.too_old"),
    N_("field.unique_items"),
    N_("field.unknown_category"),
    N_("field.unknown_client_number"),
    N_("field.unknown_option"),
    N_("field.unknown_organisation"),
    N_("field.unknown_plan"),
    N_("field.unknown_product"),
    N_("field.unknown_program"),
    N_("field.unknown_region"),
    N_("field.unknown_user"),
    N_("field.unsafe_text"),
    N_("field.weak_password"),
)

# Every text a field code can be said with (the targets of FIELD_CODE_TEXTS, the recognised
# complaints' codes, and the services' own rule codes).
FIELD_TEXTS = (
    N_("field.between"),
    N_("field.before_start"),
    N_("field.bool_parsing"),
    N_("field.bytes_too_long"),
    N_("field.bytes_too_short"),
    N_("field.bytes_type"),
    N_("field.code_format"),
    N_("field.control_characters"),
    N_("field.currency_code"),
    N_("field.date_future"),
    N_("field.date_parsing"),
    N_("field.date_past"),
    N_("field.datetime_parsing"),
    N_("field.decimal_max_digits"),
    N_("field.decimal_max_places"),
    N_("field.duplicate"),
    N_("field.email"),
    N_("field.enum"),
    N_("field.extra_forbidden"),
    N_("field.finite_number"),
    N_("field.float_parsing"),
    N_("field.frozen_field"),
    N_("field.greater_than"),
    N_("field.greater_than_equal"),
    N_("field.in_the_future"),
    N_("field.in_the_past"),
    N_("field.int_parsing"),
    N_("field.int_parsing_size"),
    N_("field.invalid"),
    N_("field.json_invalid"),
    N_("field.less_than"),
    N_("field.less_than_equal"),
    N_("field.list_type"),
    N_("field.missing"),
    N_("field.month_format"),
    N_("field.multiple_of"),
    N_("field.not_negative"),
    N_("field.phone_format"),
    N_("field.positive"),
    N_("field.string_not_ascii"),
    N_("field.string_pattern_mismatch"),
    N_("field.string_too_long"),
    N_("field.string_too_long.plain"),
    N_("field.string_too_short"),
    N_("field.string_too_short.plain"),
    N_("field.string_type"),
    N_("field.surrounding_spaces"),
    N_("field.time_delta_parsing"),
    N_("field.time_parsing"),
    N_("field.time_zone"),
    N_("field.timezone_naive"),
    N_("field.too_long"),
    N_("field.too_long.plain"),
    N_("field.too_long_text"),
    N_("field.too_short"),
    N_("field.too_short.plain"),
    N_("field.url_parsing"),
    N_("field.url_too_long"),
    N_("field.uuid_parsing"),
    N_("field.vin_format"),
)
