"""The membership pages: banner-program workshops (seed 000) and associations (seed 002), each
in its own module; this one gathers their routes under the portal's router."""

from __future__ import annotations

from fastapi import APIRouter

from web.portals import membership_associations, membership_records, membership_workshops

router = APIRouter()
router.include_router(membership_workshops.router)
router.include_router(membership_associations.router)
router.include_router(membership_records.router)
