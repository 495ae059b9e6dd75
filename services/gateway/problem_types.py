"""Every refusal the gateway can answer, and every code of a field violation: the registry that
`/openapi.json` publishes as `x-problem-types` and `x-field-codes`.

Clients switch on a problem's `type` and on `errors[].code`; the portal's translations hold one
text per entry. The gateway cannot import the services, so their reasons and codes are listed
here; tests/gateway/test_problem_types.py reads the services' source and fails when one they
raise is missing (or when one here is raised by nobody).
"""

from __future__ import annotations

from typing import get_args

from pydantic_core.core_schema import ErrorType

# Made by the gateway itself, or the default reason of each gRPC status (problems.GRPC_TO_HTTP).
GATEWAY_REASONS: dict[tuple[str, int], str] = {
    ("invalid_argument", 400): "The request breaks the published schema",
    ("out_of_range", 400): "A value is out of range",
    ("unauthenticated", 401): "Authentication needed",
    ("permission_denied", 403): "Not allowed",
    ("not_found", 404): "No such resource",
    ("method_not_allowed", 405): "Method not allowed on this path",
    ("already_exists", 409): "Already exists",
    ("failed_precondition", 409): "Not possible in the current state",
    ("aborted", 409): "Conflicting change: read again and retry",
    ("content_too_large", 413): "Request body too large",
    ("unsupported_media_type", 415): "Unsupported media type",
    ("unprocessable", 422): "A rule beyond the schema refuses the request",
    ("rate_limited", 429): "Too many attempts",
    ("resource_exhausted", 429): "Too many requests",
    ("internal", 500): "Unexpected failure",
    ("not_implemented", 501): "Not available on this server",
    ("unavailable", 503): "A back-end service is unavailable",
    ("not_ready", 503): "Not ready yet",
    ("deadline_exceeded", 504): "A back-end service did not answer in time",
}

# Raised by the services with a reason of their own (ErrorInfo.reason), at the status it maps to.
SERVICE_REASONS: tuple[tuple[str, int], ...] = (
    ("account_disabled", 401),
    ("account_disabled", 403),
    ("account_disabled", 409),
    ("already_active", 409),
    ("already_cancelled", 409),
    ("already_checked_in", 409),
    ("already_decided", 409),
    ("already_merged", 409),
    ("already_refunded", 409),
    ("already_validated", 409),
    ("answer_deadline_passed", 409),
    ("answer_not_settled", 409),
    ("attempt_superseded", 409),
    ("cancelled", 409),
    ("change_decided", 409),
    ("change_open", 409),
    ("client_already_grouped", 409),
    ("concurrent_registration", 409),
    ("consulting_logged", 409),
    ("course_full", 409),
    ("course_not_started", 409),
    ("course_started", 409),
    ("decided", 409),
    ("email_missing", 409),
    ("email_present", 409),
    ("escalation_exists", 409),
    ("escalation_open", 409),
    ("fee_unpaid", 409),
    ("group_name_deleted", 409),
    ("group_name_taken", 409),
    ("group_not_found", 404),
    ("invalid_client", 401),
    ("invalid_credentials", 401),
    ("invalid_refresh_token", 401),
    ("invalid_transition", 409),
    ("last_ops_admin", 409),
    ("link_expired", 409),
    ("link_replaced", 409),
    ("link_unknown", 404),
    ("link_used", 409),
    ("membership_ended", 409),
    ("no_contract", 409),
    ("no_courier", 409),
    ("no_escalation", 409),
    ("not_a_customer", 409),
    ("not_awaiting_answer", 409),
    ("not_configured", 409),
    ("not_consulting", 409),
    ("not_escalated", 409),
    ("not_paid", 409),
    ("not_pending", 409),
    ("not_registered", 409),
    ("option_held", 409),
    ("option_not_held", 409),
    ("order_in_progress", 409),
    ("order_not_in_progress", 409),
    ("period_ended", 409),
    ("process_request_not_failed", 409),
    ("process_request_not_found", 404),
    ("profile_incomplete", 409),
    ("program_account_client_mismatch", 409),
    ("promotion_active", 409),
    ("proof_missing", 409),
    ("record_not_empty", 409),
    ("refresh_token_expired", 401),
    ("refresh_token_reused", 401),
    ("refresh_token_revoked", 401),
    ("refunded", 409),
    ("removal_window_closed", 409),
    ("reported", 409),
    ("self_registration_closed", 409),
    ("store_exists", 409),
    ("target_merged", 409),
    ("ticket_closed", 409),
    ("ticket_opened", 409),
    ("training_full", 409),
    ("training_started", 409),
    ("transition_not_allowed", 409),
)


def _title(reason: str) -> str:
    return reason.replace("_", " ").capitalize()


PROBLEM_TYPES: dict[tuple[str, int], str] = {
    **{key: _title(key[0]) for key in SERVICE_REASONS},
    **GATEWAY_REASONS,
}

# pydantic's error types that the gateway's request models can answer (strings, numbers, dates,
# uuids, enums, lists, objects, e-mail addresses) and the gateway's own.
GATEWAY_FIELD_CODES: frozenset[str] = frozenset(
    {
        "missing",
        "extra_forbidden",
        "json_invalid",
        "model_attributes_type",
        "model_type",
        "dict_type",
        "list_type",
        "too_short",
        "too_long",
        "string_type",
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "int_type",
        "int_parsing",
        "int_from_float",
        "float_type",
        "float_parsing",
        "finite_number",
        "bool_type",
        "bool_parsing",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "multiple_of",
        "date_type",
        "date_parsing",
        "date_from_datetime_parsing",
        "date_from_datetime_inexact",
        "datetime_type",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "timezone_aware",
        "uuid_type",
        "uuid_parsing",
        "uuid_version",
        "enum",
        "literal_error",
        "value_error",
        "unsafe_text",
        "content_type",
        "unique_items",
    }
)
assert GATEWAY_FIELD_CODES - {"unsafe_text", "content_type", "unique_items"} <= set(
    get_args(ErrorType)
)

# Codes the services give their field violations (kit.errors.Validator): the kit's two, and each
# rule's own.
SERVICE_FIELD_CODES: frozenset[str] = frozenset({"invalid", "missing"})

FIELD_CODES: frozenset[str] = GATEWAY_FIELD_CODES | SERVICE_FIELD_CODES
