"""What the partners portal's route modules share: the stub, path parameters, documents."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Path, Response
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc

from services.gateway.rpc import (
    service_stub,
)
from services.gateway.uploads import BANK_PROOF_TYPES, download_response

PREFIX = "/v1/partners/{store_id}"
OPERATOR = "/v1/operator/partners"
PARTNERS_TAG = "partners"
OPERATOR_TAG = "operator"

StoreId = Annotated[uuid.UUID, Path(description="The store's id (its organisation's id).")]
OrderId = Annotated[uuid.UUID, Path(description="The order's id.")]
ProductId = Annotated[uuid.UUID, Path(description="The product's id.")]
PromotionId = Annotated[uuid.UUID, Path(description="The promotion's id.")]
ChangeId = Annotated[uuid.UUID, Path(description="The bank-detail change's id.")]
ContentChangeId = Annotated[uuid.UUID, Path(description="The content change's id.")]

partners_stub = service_stub("partners", partners_pb2_grpc.PartnersServiceStub)
Partners = Annotated[partners_pb2_grpc.PartnersServiceStub, Depends(partners_stub)]
PARTNERS_SERVICE = pb.DESCRIPTOR.services_by_name["PartnersService"]


def _stamp(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    return stamp


def _document(content: bytes, content_type: str, filename: str) -> Response:
    """A proof, as an attachment (never rendered inline by a browser)."""
    return Response(
        content=content,
        media_type=content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "private, no-store",
        },
    )


_DOCUMENT_RESPONSE: dict[int | str, dict[str, Any]] = download_response(
    BANK_PROOF_TYPES, "The document, as an attachment (Content-Disposition)."
)
