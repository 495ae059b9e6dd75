"""A store's bank-detail changes and their proofs: `/v1/partners/{store_id}/bank-detail-changes/…`.

Every route forwards the caller's token; the partners service decides.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from guichet.partners.v1 import partners_pb2 as pb

from services.gateway.auth import CurrentCaller
from services.gateway.openapi import errors
from services.gateway.portals.partners.common import (
    _DOCUMENT_RESPONSE,
    PARTNERS_SERVICE,
    PARTNERS_TAG,
    PREFIX,
    ChangeId,
    Partners,
    StoreId,
    _document,
)
from services.gateway.portals.partners.schemas import (
    BankDetailBody,
    BankDetailChange,
    BankDetailChangePage,
)
from services.gateway.problems import Problem
from services.gateway.rpc import (
    Operations,
    Page,
    one,
    operation_id,
    page_of,
)
from services.gateway.uploads import (
    BANK_PROOF_TYPES,
    Filename,
    upload_media_type,
    upload_request_body,
)

router = APIRouter(tags=[PARTNERS_TAG], generate_unique_id_function=operation_id)
ops = Operations(router, PARTNERS_SERVICE, Partners)

# --- bank details ------------------------------------------------------------------------------


@ops.post(
    f"{PREFIX}/bank-detail-changes",
    rpc="SubmitBankDetailChange",
    answer=one(BankDetailChange, "change"),
    summary="Ask to change the bank details (applied after a proof and an operator's approval)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
def submit_bank_detail_change(
    store_id: StoreId, body: BankDetailBody
) -> pb.SubmitBankDetailChangeRequest:
    return pb.SubmitBankDetailChangeRequest(
        store_id=str(store_id),
        iban=body.iban,
        bic=body.bic,
        account_holder=body.account_holder,
    )


@ops.get(
    f"{PREFIX}/bank-detail-changes",
    rpc="ListBankDetailChanges",
    answer=page_of(BankDetailChangePage, BankDetailChange, "changes"),
    summary="The store's bank-detail changes, newest first",
    responses=errors(400, 401, 404),
)
def list_bank_detail_changes(store_id: StoreId, page: Page) -> pb.ListBankDetailChangesRequest:
    return pb.ListBankDetailChangesRequest(store_id=str(store_id), page=page)


# The upload route: the gateway lets its body past MAX_BODY_BYTES, up to MAX_UPLOAD_BYTES, and
# partners' own checks (PROOF_MAX_BYTES, the types, the bytes) decide.
PROOF_UPLOAD = ("PUT", f"{PREFIX}/bank-detail-changes/{{change_id}}/proof")


@router.put(
    PROOF_UPLOAD[1],
    summary="Upload the bank's proof: the raw body, its type (PDF, PNG, JPEG) in Content-Type",
    responses={
        **errors(400, 401, 404, 409),
        413: {
            "model": Problem,
            "description": "Larger than the gateway's upload limit (MAX_UPLOAD_BYTES, 3,900,000 "
            "bytes by default). Below it, a proof over partners' own limit is a 400 on `content`.",
        },
    },
    openapi_extra=upload_request_body(BANK_PROOF_TYPES, "The proof: a PDF, PNG or JPEG file."),
)
async def upload_proof(
    store_id: StoreId,
    change_id: ChangeId,
    request: Request,
    caller: CurrentCaller,
    partners: Partners,
    filename: Filename,
) -> BankDetailChange:
    content_type = upload_media_type(request, filename)
    response = await partners.UploadBankDetailProof(
        pb.UploadBankDetailProofRequest(
            store_id=str(store_id),
            change_id=str(change_id),
            filename=filename,
            content_type=content_type,
            content=await request.body(),
        ),
        metadata=caller.metadata,
    )
    return BankDetailChange.from_proto(response.change)


@router.get(
    f"{PREFIX}/bank-detail-changes/{{change_id}}/proof",
    summary="Download the store's own proof",
    response_class=Response,
    responses={**errors(400, 401, 404), **_DOCUMENT_RESPONSE},
)
async def download_proof(
    store_id: StoreId, change_id: ChangeId, caller: CurrentCaller, partners: Partners
) -> Response:
    response = await partners.GetBankDetailProof(
        pb.GetBankDetailProofRequest(store_id=str(store_id), change_id=str(change_id)),
        metadata=caller.metadata,
    )
    return _document(response.content, response.document.content_type, response.document.filename)
