"""Which portals a signed-in person sees: one link per organisation they belong to, by its
kind, plus the agent and operator views for the operator's roles."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from web.client.api import Organisation, User
from web.i18n import N_
from web.session import Visitor


@dataclass(frozen=True)
class PortalLink:
    key: str
    href: str
    organisation: str


_BY_KIND = {
    "service_provider": ("nav.groups", "/providers/{id}/groups"),
    "association": ("nav.association", "/associations/{id}"),
    "delivery_partner": ("nav.partners", "/partners/{id}"),
    "workshop": ("nav.workshop", "/workshops/{id}"),
}


# Who administers an organisation's accounts, by kind (as identity decides; ops_admin: all).
_ADMIN_ROLES = {
    "service_provider": {"business_account_manager"},
    "client_business": {"business_account_manager"},
    "association": {"association_admin"},
    "delivery_partner": {"partner_manager"},
    "workshop": {"workshop_owner"},
}


# How long the menu trusts an organisation's name and kind: they seldom change, and every page
# draws the menu (one gateway call per organisation of the visitor's saved on most pages).
NAV_TTL_SECONDS = 60.0


@dataclass
class NavCache:
    """Name and kind of the organisations menus were drawn for, by id, for NAV_TTL_SECONDS.

    Only ids from the visitor's own memberships (their /v1/me) are looked up through it, so it
    never tells anyone about an organisation they do not belong to."""

    entries: dict[str, tuple[float, Organisation]] = field(default_factory=dict)

    async def get(self, visitor: Visitor, organisation_id: str) -> Organisation:
        now = time.monotonic()
        cached = self.entries.get(organisation_id)
        if cached is not None and now - cached[0] < NAV_TTL_SECONDS:
            return cached[1]
        organisation = await visitor.organisation(organisation_id)
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[organisation_id] = (now, organisation)
        return organisation


async def portal_links(visitor: Visitor, me: User) -> list[PortalLink]:
    links: list[PortalLink] = []
    roles = {m["role"] for m in me["memberships"]}
    cache: NavCache = visitor.request.app.state.nav_cache
    ids = list(dict.fromkeys(m["organisation_id"] for m in me["memberships"]))
    found = await asyncio.gather(*(cache.get(visitor, organisation_id) for organisation_id in ids))
    for organisation_id, organisation in zip(ids, found, strict=True):
        held = {m["role"] for m in me["memberships"] if m["organisation_id"] == organisation_id}
        known = _BY_KIND.get(organisation["kind"])
        # Only a provider's business_account_manager sees and manages its client groups.
        if organisation["kind"] == "service_provider" and "business_account_manager" not in held:
            known = None
        if known:
            key, href = known
            links.append(PortalLink(key, href.format(id=organisation_id), organisation["name"]))
        if held & _ADMIN_ROLES.get(organisation["kind"], set()):
            href = f"/organisations/{organisation_id}/accounts"
            links.append(PortalLink("nav.accounts", href, organisation["name"]))
    links.append(PortalLink("nav.support", "/support", ""))
    if "support_agent" in roles:
        links.append(PortalLink("nav.queue", "/support/queue", ""))
    if "ops_admin" in roles:
        links.append(PortalLink("nav.operator", "/operator", ""))
    return links


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("nav.accounts"),
    N_("nav.association"),
    N_("nav.groups"),
    N_("nav.operator"),
    N_("nav.partners"),
    N_("nav.queue"),
    N_("nav.support"),
    N_("nav.workshop"),
    N_("role.association_admin"),
    N_("role.business_account_manager"),
    N_("role.customer_user"),
    N_("role.editor"),
    N_("role.member"),
    N_("role.ops_admin"),
    N_("role.partner_manager"),
    N_("role.program_account_manager"),
    N_("role.read_only"),
    N_("role.support_agent"),
    N_("role.workshop_owner"),
)
