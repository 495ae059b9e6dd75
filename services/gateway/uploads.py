"""Binary uploads and downloads: the raw body, its media type, and how the document says so.

An upload route takes the file as the whole body, with its media type in `Content-Type`, and
its name in the `filename` query parameter. The document declares each media type the service
accepts, and `application/octet-stream` last: a client that cannot name the type (or a
generator that only knows octet-stream bodies) sends that, and the type is then read from the
filename's extension (Python's `mimetypes`, the IANA registrations). The service still checks
that the bytes are what the type says (PDF, PNG, JPEG… by their leading bytes).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Query, Request

from services.gateway.problems import FieldError, ProblemException

OCTET_STREAM = "application/octet-stream"
BANK_PROOF_TYPES = ("application/pdf", "image/png", "image/jpeg")
# Support's ATTACHMENT_TYPES by default (services/support/settings.py; a test compares them): a
# deployment that narrows the list gets a 400 naming `content_type` for the others.
ATTACHMENT_TYPES = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/plain",
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)


# A file name as the services keep it: no path, no control character, not blank.
FILENAME_PATTERN = r"^[^\x00-\x1f\x7f/\\]*[^\s\x00-\x1f\x7f/\\][^\x00-\x1f\x7f/\\]*$"
FILENAME_MAX = 200


def _binary(media_type: str, *, upload: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "format": "binary", "contentMediaType": media_type}
    if upload:
        schema["minLength"] = 1  # an empty file is refused
    return {"schema": schema}


def upload_request_body(types: Sequence[str], description: str) -> dict[str, Any]:
    """The `openapi_extra` of an upload route: each accepted type, then octet-stream."""
    return {
        "requestBody": {
            "required": True,
            "description": description
            + " With `application/octet-stream`, the type is read from `filename`'s extension.",
            "content": {t: _binary(t, upload=True) for t in (*types, OCTET_STREAM)},
        }
    }


def download_response(types: Sequence[str], description: str) -> dict[int | str, Any]:
    """The success response of a download route: the bytes, under their own media type."""
    return {200: {"description": description, "content": {t: _binary(t) for t in types}}}


def upload_media_type(request: Request, filename: str) -> str:
    """The upload's media type: Content-Type, or for octet-stream the filename's extension."""
    declared = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if declared and declared != OCTET_STREAM:
        return declared
    guessed, _ = mimetypes.guess_type(filename, strict=True)
    if guessed is None:
        raise ProblemException(
            422,
            "unprocessable",
            "1 field is invalid: content_type",
            errors=[
                FieldError(
                    "content_type",
                    "send the file's type in Content-Type, or a filename whose extension names it",
                    "content_type",
                )
            ],
        )
    return guessed


Filename = Annotated[
    str,
    Query(
        min_length=1,
        max_length=FILENAME_MAX,
        pattern=FILENAME_PATTERN,
        description="The file's name (no path); with octet-stream its extension names the type.",
        examples=["capture.png"],
    ),
]
