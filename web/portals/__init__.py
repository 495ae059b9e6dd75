"""One module per portal, each with its routes and its templates folder (its words are in the
gettext catalogs, web/locale)."""

from __future__ import annotations

from fastapi import APIRouter

from web.portals import (
    account,
    groups,
    membership,
    operator,
    partners,
    programs_admin,
    support,
)

ROUTERS: tuple[APIRouter, ...] = (
    account.router,
    groups.router,
    support.router,
    partners.router,
    membership.router,
    operator.router,
    programs_admin.router,
)
