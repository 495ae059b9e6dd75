"""Attachments of a ticket: a file must be of an accepted type, within the size limit, and what
its type says it is.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, Validator
from services.support.domain.common import (
    require_active,
    require_user,
    side_of,
    ticket_for,
    uuid_or_raise,
)
from services.support.models import Attachment, Ticket
from services.support.settings import SupportSettings

FILENAME_MAX = 200

# Leading bytes of the binary types we accept: a file must be what it says it is.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
}


def clean_filename(raw: str) -> str:
    """The last path component, without control characters: never a path on anyone's disk."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[\x00-\x1f\x7f]", "", name).strip()


async def add_attachment(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    ticket_id: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> Attachment:
    ticket, _ = await ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    name = clean_filename(filename)
    v.require("filename", name)
    v.check(len(name) <= FILENAME_MAX, "filename", f"must be at most {FILENAME_MAX} characters")
    media = content_type.split(";", 1)[0].strip().lower()
    v.require("content_type", media)
    if media and media not in settings.allowed_attachment_types:
        allowed = ", ".join(sorted(settings.allowed_attachment_types))
        v.check(False, "content_type", f"is not accepted; accepted: {allowed}", code="content_type")
    v.check(len(content) > 0, "content", "is empty", code="empty_file")
    v.check(
        len(content) <= settings.attachment_max_bytes,
        "content",
        f"is larger than {settings.attachment_max_bytes} bytes",
        # The limit is a setting of the deployment, not of the published schema.
        code="file_too_large",
    )
    magic = _MAGIC.get(media)
    if magic is not None and content and not content.startswith(magic):
        v.check(False, "content", f"is not a {media} file", code="content_mismatch")
    v.raise_if_any()
    require_active(ticket)
    attachment = Attachment(
        id=uuid.uuid4(),
        ticket_id=ticket.id,
        filename=name,
        content_type=media,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by_id=actor.subject,
        created_at=now,
    )
    session.add(attachment)
    ticket.updated_at = now
    return attachment


async def get_attachment(
    *, session: AsyncSession, actor: Principal | None, attachment_id: str
) -> Attachment:
    actor = require_user(actor)
    attachment = await session.get(Attachment, uuid_or_raise("attachment_id", attachment_id))
    if attachment is None:
        raise NotFound("attachment not found")
    ticket = await session.get(Ticket, attachment.ticket_id)
    assert ticket is not None
    try:
        side_of(actor, ticket)
    except NotFound:
        raise NotFound("attachment not found") from None
    return attachment
