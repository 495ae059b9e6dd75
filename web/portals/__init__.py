"""One module per portal, each with its routes, its messages and its templates folder."""

from __future__ import annotations

from fastapi import APIRouter

from web.portals import account, groups, membership, operator, partners, security, support

ROUTERS: tuple[APIRouter, ...] = (
    account.router,
    security.router,
    groups.router,
    support.router,
    partners.router,
    membership.router,
    operator.router,
)
