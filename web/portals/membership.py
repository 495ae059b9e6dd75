"""The membership pages."""

from __future__ import annotations

from fastapi import APIRouter

from web.i18n import register

MESSAGES: dict[str, tuple[str, str]] = {}
register(MESSAGES)

router = APIRouter()
