"""The gateway's routes, one package per portal (the schemas beside the routes that use them).

* `identity/`: tokens, registration, the signed-in member, second factors, the admin's pages
  (`auth`, `registration`, `me`, `factors`, `admin`; `schemas`, `factor_schemas`).
* `groups/`: a service provider's client groups, delegated access, process requests.
* `support/`: tickets with SLA, categories and answers, plans and contracts, reports.
* `workshops/` and `associations/`: the membership service's two portals; what they share (the
  stub, schema helpers, enums) is `membership.py`.
* `partners/`: a delivery partner's back office (`routes`, `bank_details`) and the operators'
  partner routes (`operator`); `common` holds their stub and path parameters.

Most operations are one gRPC call declared with `services.gateway.rpc.Operations`; the edge
itself (auth, problems, limits, OpenAPI) stays in `services.gateway`.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.portals.associations import routes as associations
from services.gateway.portals.groups import routes as groups
from services.gateway.portals.identity import admin, auth, factors, me, registration
from services.gateway.portals.partners import bank_details, operator, routes as partners
from services.gateway.portals.support import routes as support
from services.gateway.portals.workshops import routes as workshops
from services.gateway.rpc import close_channels

# In the order the app includes them (a static path before the parameterised one it resembles).
ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    registration.router,
    me.router,
    factors.router,
    admin.router,
    groups.router,
    support.router,
    workshops.router,
    associations.router,
    partners.router,
    bank_details.router,
    operator.router,
)
# Routes whose body may be as large as an upload (the BodyLimit middleware's exceptions).
UPLOADS = (support.ATTACHMENT_UPLOAD, bank_details.PROOF_UPLOAD)

__all__ = ["ROUTERS", "UPLOADS", "close_channels"]
