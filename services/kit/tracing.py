"""The registry of what Guichet's traces carry: span names and `guichet.*` attributes.

Span names follow the instrumentations: `<METHOD> <route>` for the gateway,
`/<package>.<Service>/<Method>` for gRPC (client and server), the SQL verb for statements, and
Temporal's `StartWorkflow:<Type>`, `RunWorkflow:<Type>`, `StartActivity:<name>`,
`RunActivity:<name>`. The attributes below are the business keys an operator searches by; the
gRPC server interceptor sets them from the request fields of the same meaning, so every service
tags its spans the same way without code of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from google.protobuf.message import Message
from opentelemetry import trace

TENANT: Final = "guichet.tenant"
GROUP: Final = "guichet.group"
TICKET: Final = "guichet.ticket"
ORDER: Final = "guichet.order"
PROCESS_REQUEST: Final = "guichet.process_request"
MEMBERSHIP: Final = "guichet.membership"
USER: Final = "guichet.user"
REQUEST_ID: Final = "guichet.request_id"
PRINCIPAL_KIND: Final = "guichet.principal.kind"

ATTRIBUTES: Final = (
    TENANT,
    GROUP,
    TICKET,
    ORDER,
    PROCESS_REQUEST,
    MEMBERSHIP,
    USER,
    REQUEST_ID,
    PRINCIPAL_KIND,
)

# Request fields (top level of any service's request message) and the attribute they fill.
FIELD_ATTRIBUTES: Final[Mapping[str, str]] = {
    "organisation_id": TENANT,
    "provider_id": TENANT,
    "store_id": TENANT,
    "association_id": TENANT,
    "workshop_id": TENANT,
    "group_id": GROUP,
    "ticket_id": TICKET,
    "order_id": ORDER,
    "process_request_id": PROCESS_REQUEST,
    "membership_id": MEMBERSHIP,
    "user_id": USER,
}


def tag_from_request(request: Any) -> None:
    """Sets the registry's attributes on the current span from the request's key fields."""
    span = trace.get_current_span()
    if not span.is_recording() or not isinstance(request, Message):
        return
    for descriptor, value in request.ListFields():
        attribute = FIELD_ATTRIBUTES.get(descriptor.name)
        if attribute is not None and isinstance(value, str) and value:
            span.set_attribute(attribute, value)


def tag(**attributes: str) -> None:
    """Sets registry attributes by short name (`tag(ticket=…)`) on the current span."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for name, value in attributes.items():
        key = f"guichet.{name}"
        if key not in ATTRIBUTES:
            raise ValueError(f"{key} is not in the trace attribute registry")
        span.set_attribute(key, value)
