"""The RPCs of bank-detail changes and their proof documents."""

from __future__ import annotations

from guichet.partners.v1 import partners_pb2 as pb

from services.kit.auth import current_principal
from services.partners.domain import bank_details, common
from services.partners.servicer.base import Context, ServicerBase
from services.partners.servicer.convert import (
    BANK_STATUS,
    _name_of,
    _page,
    bank_change_to_proto,
    proof_to_proto,
)


class BankDetailRpcs(ServicerBase):
    """Bank-detail changes and their proof documents."""

    async def SubmitBankDetailChange(
        self, request: pb.SubmitBankDetailChangeRequest, context: Context
    ) -> pb.SubmitBankDetailChangeResponse:
        async with self._sessions.begin() as session:
            view = await bank_details.submit_bank_detail_change(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                iban=request.iban,
                bic=request.bic,
                account_holder=request.account_holder,
            )
        return pb.SubmitBankDetailChangeResponse(change=self._bank(view))

    def _bank(self, view: bank_details.BankChangeView) -> pb.BankDetailChange:
        return bank_change_to_proto(view, full_iban=common.is_operator(current_principal()))

    async def UploadBankDetailProof(
        self, request: pb.UploadBankDetailProofRequest, context: Context
    ) -> pb.UploadBankDetailProofResponse:
        async with self._sessions.begin() as session:
            view = await bank_details.upload_bank_detail_proof(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                change_id=request.change_id,
                filename=request.filename,
                content_type=request.content_type,
                content=request.content,
            )
        return pb.UploadBankDetailProofResponse(change=self._bank(view))

    async def ListBankDetailChanges(
        self, request: pb.ListBankDetailChangesRequest, context: Context
    ) -> pb.ListBankDetailChangesResponse:
        async with self._sessions.begin() as session:
            page = await bank_details.list_bank_detail_changes(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                status=_name_of(BANK_STATUS, request.status),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListBankDetailChangesResponse(
            changes=[self._bank(v) for v in page.items], page=_page(page.next_page_token)
        )

    async def GetBankDetailProof(
        self, request: pb.GetBankDetailProofRequest, context: Context
    ) -> pb.GetBankDetailProofResponse:
        async with self._sessions.begin() as session:
            document = await bank_details.get_bank_detail_proof(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                change_id=request.change_id,
            )
        return pb.GetBankDetailProofResponse(
            document=proof_to_proto(document), content=document.content
        )

    async def DecideBankDetailChange(
        self, request: pb.DecideBankDetailChangeRequest, context: Context
    ) -> pb.DecideBankDetailChangeResponse:
        async with self._sessions.begin() as session:
            view = await bank_details.decide_bank_detail_change(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                change_id=request.change_id,
                approve=request.approve,
                reason=request.reason,
            )
        return pb.DecideBankDetailChangeResponse(change=self._bank(view))
