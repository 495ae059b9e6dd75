"""Every process of Guichet, in one place: `make dev`, the end-to-end tests and the Helm chart's
component list follow this table. A new service joins by adding one `Component` here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    name: str
    # `python -m <module>` runs it; services also accept `migrate`.
    module: str
    # Key of the port in the stack's port map (None: the process listens on nothing).
    port_key: str | None
    # Its own database (one per service), or None.
    database: str | None = None
    # Whether it serves gRPC (health-checked) or HTTP (/healthz).
    protocol: str = "grpc"
    # Service credentials identity issues to it, for calls made on nobody's behalf.
    service_client: bool = True
    # The services it calls over gRPC. Every process gets every `<NAME>_ADDR` (stack.py); this
    # list is what the Helm chart's NetworkPolicies must allow (tests/deploy/test_chart.py).
    calls: tuple[str, ...] = ()


_SERVICES = ("identity", "groups", "support", "partners", "membership")

# Identity asks membership whether an association member's fee is paid (account validation).
# Membership verifies tokens with identity's JWKS, so identity cannot wait for membership: it
# starts first and connects to membership on the first validation (a lazy gRPC channel).
IDENTITY = Component(
    "identity", "services.identity", "identity", database="identity", calls=("membership",)
)
GROUPS = Component("groups", "services.groups", "groups", database="groups", calls=("identity",))
SUPPORT = Component(
    "support", "services.support", "support", database="support", calls=("identity",)
)
MEMBERSHIP = Component(
    "membership", "services.membership", "membership", database="membership", calls=("identity",)
)
PARTNERS = Component(
    "partners", "services.partners", "partners", database="partners", calls=("identity", "support")
)
WORKER = Component("worker", "workflows.worker", None, protocol="none", calls=_SERVICES)
GATEWAY = Component("gateway", "services.gateway", "gateway", protocol="http", calls=_SERVICES)
# The web portal: pages for people, calling only the gateway's public HTTP API (web/).
WEB = Component("web", "web", "web", protocol="http", service_client=False, calls=("gateway",))

# Start order: identity first (everyone verifies tokens with it; what it calls itself, it reaches
# lazily), the gateway last.
COMPONENTS: tuple[Component, ...] = (
    IDENTITY,
    GROUPS,
    SUPPORT,
    MEMBERSHIP,
    PARTNERS,
    WORKER,
    GATEWAY,
    WEB,
)

DEFAULT_PORTS: dict[str, int] = {
    "gateway": 8000,
    "web": 3000,
    "identity": 50051,
    "groups": 50052,
    "support": 50053,
    "partners": 50054,
    "membership": 50055,
    "postgres": 5432,
    "temporal": 7233,
    "temporal_ui": 8233,
    "smtp": 1025,
    "trace_ui": 6006,
    "otlp": 4317,
    "prometheus": 9090,
}
