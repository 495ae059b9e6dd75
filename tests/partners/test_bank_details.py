"""Bank-detail changes: nothing applies before a proof is uploaded and an operator approves;
proofs are checked (size, type, content) and never served to another store."""

from __future__ import annotations

import asyncio
import hashlib

import grpc
from guichet.partners.v1 import partners_pb2 as pb

from services.kit.errors import RemoteProblem
from services.partners.domain.bank_details import iban_is_valid
from tests.partners.harness import OTHER_IBAN, PDF, PNG, VALID_IBAN, Partners, fails


def _fields(error: grpc.aio.AioRpcError) -> set[str]:
    return {name for name, _ in RemoteProblem.from_rpc_error(error).violations}


def test_iban_check_digits() -> None:
    assert iban_is_valid(VALID_IBAN)
    assert iban_is_valid(OTHER_IBAN)
    assert not iban_is_valid(VALID_IBAN[:-1] + "8")
    assert not iban_is_valid("FR76")


async def test_a_change_applies_only_after_proof_and_approval(partners: Partners) -> None:
    store = await partners.store(products=0)
    bad = await fails(
        partners.stub.SubmitBankDetailChange(
            pb.SubmitBankDetailChangeRequest(store_id=store.id, iban="FR76 1234", bic="XYZ"),
            metadata=store.token,
        )
    )
    assert _fields(bad) == {"iban", "bic", "account_holder"}
    submitted = await partners.stub.SubmitBankDetailChange(
        pb.SubmitBankDetailChangeRequest(
            store_id=store.id,
            iban="fr76 3000 6000 0112 3456 7890 189",
            bic="agrifrpp",
            account_holder="Pizzeria SARL",
        ),
        metadata=store.token,
    )
    change = submitted.change
    assert change.status == pb.BANK_DETAIL_CHANGE_STATUS_AWAITING_PROOF
    assert (change.iban, change.iban_masked) == ("", "FR76 **** 0189")  # partners see it masked
    second = await fails(
        partners.stub.SubmitBankDetailChange(
            pb.SubmitBankDetailChangeRequest(
                store_id=store.id, iban=OTHER_IBAN, bic="COBADEFFXXX", account_holder="X"
            ),
            metadata=store.token,
        )
    )
    assert second.code() == grpc.StatusCode.ALREADY_EXISTS
    _, agent = await partners.operator()
    # The rule: no proof, no decision.
    early = await fails(
        partners.stub.DecideBankDetailChange(
            pb.DecideBankDetailChangeRequest(change_id=change.id, approve=True), metadata=agent
        )
    )
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    store_now = await partners.stub.GetStore(
        pb.GetStoreRequest(store_id=store.id), metadata=store.token
    )
    assert store_now.store.iban_masked == ""

    uploaded = await partners.stub.UploadBankDetailProof(
        pb.UploadBankDetailProofRequest(
            store_id=store.id,
            change_id=change.id,
            filename="attestation.pdf",
            content_type="application/pdf",
            content=PDF,
        ),
        metadata=store.token,
    )
    assert uploaded.change.status == pb.BANK_DETAIL_CHANGE_STATUS_PROOF_SUBMITTED
    assert uploaded.change.proof.sha256 == hashlib.sha256(PDF).hexdigest()
    denied = await fails(
        partners.stub.DecideBankDetailChange(
            pb.DecideBankDetailChangeRequest(change_id=change.id, approve=True),
            metadata=store.token,
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    queue = await partners.stub.ListBankDetailChanges(
        pb.ListBankDetailChangesRequest(status=pb.BANK_DETAIL_CHANGE_STATUS_PROOF_SUBMITTED),
        metadata=agent,
    )
    mine = [c for c in queue.changes if c.id == change.id]
    assert mine and mine[0].iban == VALID_IBAN  # operators compare the full IBAN with the proof
    approved = await partners.stub.DecideBankDetailChange(
        pb.DecideBankDetailChangeRequest(change_id=change.id, approve=True), metadata=agent
    )
    assert approved.change.status == pb.BANK_DETAIL_CHANGE_STATUS_APPROVED
    store_now = await partners.stub.GetStore(
        pb.GetStoreRequest(store_id=store.id), metadata=store.token
    )
    assert (store_now.store.iban_masked, store_now.store.bic) == ("FR76 **** 0189", "AGRIFRPP")
    late = await fails(
        partners.stub.UploadBankDetailProof(
            pb.UploadBankDetailProofRequest(
                store_id=store.id,
                change_id=change.id,
                filename="b.pdf",
                content_type="application/pdf",
                content=PDF,
            ),
            metadata=store.token,
        )
    )
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_rejection_says_why_and_leaves_the_details(partners: Partners) -> None:
    store = await partners.store(products=0)
    change = (
        await partners.stub.SubmitBankDetailChange(
            pb.SubmitBankDetailChangeRequest(
                store_id=store.id, iban=OTHER_IBAN, bic="COBADEFFXXX", account_holder="Napoli"
            ),
            metadata=store.token,
        )
    ).change
    await partners.stub.UploadBankDetailProof(
        pb.UploadBankDetailProofRequest(
            store_id=store.id,
            change_id=change.id,
            filename="rib.png",
            content_type="image/png",
            content=PNG,
        ),
        metadata=store.token,
    )
    _, agent = await partners.operator()
    silent = await fails(
        partners.stub.DecideBankDetailChange(
            pb.DecideBankDetailChangeRequest(change_id=change.id), metadata=agent
        )
    )
    assert _fields(silent) == {"reason"}
    rejected = await partners.stub.DecideBankDetailChange(
        pb.DecideBankDetailChangeRequest(change_id=change.id, reason="Le titulaire diffère"),
        metadata=agent,
    )
    assert rejected.change.status == pb.BANK_DETAIL_CHANGE_STATUS_REJECTED
    store_now = await partners.stub.GetStore(
        pb.GetStoreRequest(store_id=store.id), metadata=store.token
    )
    assert store_now.store.iban_masked == ""
    # Decided: the store may open a new change.
    await partners.stub.SubmitBankDetailChange(
        pb.SubmitBankDetailChangeRequest(
            store_id=store.id, iban=OTHER_IBAN, bic="COBADEFFXXX", account_holder="Napoli SARL"
        ),
        metadata=store.token,
    )


async def test_proofs_are_checked(partners: Partners) -> None:
    store = await partners.store(products=0)
    change = (
        await partners.stub.SubmitBankDetailChange(
            pb.SubmitBankDetailChangeRequest(
                store_id=store.id, iban=VALID_IBAN, bic="AGRIFRPP", account_holder="X"
            ),
            metadata=store.token,
        )
    ).change

    async def upload(filename: str, content_type: str, content: bytes) -> set[str]:
        error = await fails(
            partners.stub.UploadBankDetailProof(
                pb.UploadBankDetailProofRequest(
                    store_id=store.id,
                    change_id=change.id,
                    filename=filename,
                    content_type=content_type,
                    content=content,
                ),
                metadata=store.token,
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        return _fields(error)

    assert await upload("rib.exe", "application/x-msdownload", b"MZ\x90") == {"content_type"}
    # Declared a PDF, but the bytes are a PNG: refused.
    assert await upload("rib.pdf", "application/pdf", PNG) == {"content"}
    assert await upload("rib.pdf", "application/pdf", b"") == {"content"}
    too_big = PDF + b"0" * partners.settings.proof_max_bytes
    assert await upload("rib.pdf", "application/pdf", too_big) == {"content"}
    assert await upload("../../etc/passwd", "application/pdf", PDF) == {"filename"}


async def test_proofs_are_never_served_to_another_store(partners: Partners) -> None:
    owner = await partners.store(products=0)
    other = await partners.store(products=0)
    change = (
        await partners.stub.SubmitBankDetailChange(
            pb.SubmitBankDetailChangeRequest(
                store_id=owner.id, iban=VALID_IBAN, bic="AGRIFRPP", account_holder="Owner"
            ),
            metadata=owner.token,
        )
    ).change
    await partners.stub.UploadBankDetailProof(
        pb.UploadBankDetailProofRequest(
            store_id=owner.id,
            change_id=change.id,
            filename="rib.pdf",
            content_type="application/pdf",
            content=PDF,
        ),
        metadata=owner.token,
    )
    own = await partners.stub.GetBankDetailProof(
        pb.GetBankDetailProofRequest(store_id=owner.id, change_id=change.id),
        metadata=owner.token,
    )
    assert own.content == PDF
    for request in (
        pb.GetBankDetailProofRequest(store_id=other.id, change_id=change.id),
        pb.GetBankDetailProofRequest(store_id=owner.id, change_id=change.id),
    ):
        error = await fails(partners.stub.GetBankDetailProof(request, metadata=other.token))
        assert error.code() == grpc.StatusCode.NOT_FOUND
    no_store = await fails(
        partners.stub.GetBankDetailProof(
            pb.GetBankDetailProofRequest(change_id=change.id), metadata=other.token
        )
    )
    assert no_store.code() == grpc.StatusCode.PERMISSION_DENIED
    listing = await fails(
        partners.stub.ListBankDetailChanges(
            pb.ListBankDetailChangesRequest(store_id=owner.id), metadata=other.token
        )
    )
    assert listing.code() == grpc.StatusCode.NOT_FOUND
    _, agent = await partners.operator()
    seen = await partners.stub.GetBankDetailProof(
        pb.GetBankDetailProofRequest(change_id=change.id), metadata=agent
    )
    assert seen.document.filename == "rib.pdf"


async def test_two_decisions_at_once_decide_once(partners: Partners) -> None:
    store = await partners.store(products=0)
    change = (
        await partners.stub.SubmitBankDetailChange(
            pb.SubmitBankDetailChangeRequest(
                store_id=store.id, iban=VALID_IBAN, bic="AGRIFRPP", account_holder="X"
            ),
            metadata=store.token,
        )
    ).change
    await partners.stub.UploadBankDetailProof(
        pb.UploadBankDetailProofRequest(
            store_id=store.id,
            change_id=change.id,
            filename="rib.pdf",
            content_type="application/pdf",
            content=PDF,
        ),
        metadata=store.token,
    )
    _, agent = await partners.operator()
    results = await asyncio.gather(
        partners.stub.DecideBankDetailChange(
            pb.DecideBankDetailChangeRequest(change_id=change.id, approve=True), metadata=agent
        ),
        partners.stub.DecideBankDetailChange(
            pb.DecideBankDetailChangeRequest(change_id=change.id, reason="no"), metadata=agent
        ),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(errors) == 1 and errors[0].code() == grpc.StatusCode.FAILED_PRECONDITION
