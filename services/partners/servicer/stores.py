"""The RPCs of stores (registration, settings) and their daily check-ins."""

from __future__ import annotations

import uuid

import grpc
from guichet.identity.v1 import identity_pb2
from guichet.partners.v1 import partners_pb2 as pb

from services.kit.auth import current_principal
from services.partners.domain import check_ins, stores
from services.partners.servicer.base import Context, ServicerBase
from services.partners.servicer.convert import _page, _ts, check_in_to_proto, store_to_proto


class StoreRpcs(ServicerBase):
    """Stores and their daily check-ins."""

    async def RegisterStore(
        self, request: pb.RegisterStoreRequest, context: Context
    ) -> pb.RegisterStoreResponse:
        organisation = await self._organisation(request.store_id)
        async with self._sessions.begin() as session:
            store = await stores.register_store(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                organisation=organisation,
                operations_email=request.operations_email,
                phone=request.phone,
                timezone=request.timezone,
                currency=request.currency,
            )
        return pb.RegisterStoreResponse(store=store_to_proto(store))

    async def _organisation(self, store_id: str) -> stores.OrganisationInfo | None:
        """Identity's word on the organisation (with the caller's token); None if unknown."""
        try:
            uuid.UUID(store_id)
        except ValueError:
            return None
        try:
            response = await self._identity.GetOrganisation(
                identity_pb2.GetOrganisationRequest(organisation_id=store_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise
        kind = identity_pb2.OrganisationKind.Name(response.organisation.kind)
        return stores.OrganisationInfo(
            name=response.organisation.name,
            kind=kind.removeprefix("ORGANISATION_KIND_").lower(),
        )

    async def GetStore(self, request: pb.GetStoreRequest, context: Context) -> pb.GetStoreResponse:
        async with self._sessions.begin() as session:
            store = await stores.get_store(
                session=session, actor=current_principal(), store_id=request.store_id
            )
        return pb.GetStoreResponse(store=store_to_proto(store))

    async def UpdateStoreSettings(
        self, request: pb.UpdateStoreSettingsRequest, context: Context
    ) -> pb.UpdateStoreSettingsResponse:
        async with self._sessions.begin() as session:
            store = await stores.update_store_settings(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                operations_email=request.operations_email,
                phone=request.phone,
                timezone=request.timezone,
            )
        return pb.UpdateStoreSettingsResponse(store=store_to_proto(store))

    async def CheckIn(self, request: pb.CheckInRequest, context: Context) -> pb.CheckInResponse:
        async with self._sessions.begin() as session:
            row = await check_ins.check_in(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
            )
        return pb.CheckInResponse(check_in=check_in_to_proto(row))

    async def ListCheckIns(
        self, request: pb.ListCheckInsRequest, context: Context
    ) -> pb.ListCheckInsResponse:
        async with self._sessions.begin() as session:
            page = await check_ins.list_check_ins(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListCheckInsResponse(
            check_ins=[check_in_to_proto(c) for c in page.items], page=_page(page.next_page_token)
        )

    async def ListStoresNotCheckedIn(
        self, request: pb.ListStoresNotCheckedInRequest, context: Context
    ) -> pb.ListStoresNotCheckedInResponse:
        async with self._sessions.begin() as session:
            page = await check_ins.list_stores_not_checked_in(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                day=request.day,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListStoresNotCheckedInResponse(
            stores=[
                pb.StoreCheckInStatus(
                    store=store_to_proto(m.store),
                    day=m.day.isoformat(),
                    last_check_in_time=_ts(m.last_check_in),
                )
                for m in page.items
            ],
            page=_page(page.next_page_token),
        )
