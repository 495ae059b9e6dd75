"""Identity's rows and results as protos, and proto enums back as the domain's names.

Kept apart from the servicer so that its methods read as request → domain call → mapping.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2

from services.identity.domain import accounts, tokens
from services.identity.models import (
    AuditEvent,
    Organisation,
    OrganisationKind,
    Passkey,
    User,
    UserStatus,
)

_KIND_TO_PROTO: dict[str, identity_pb2.OrganisationKind.ValueType] = {
    OrganisationKind.SERVICE_PROVIDER: identity_pb2.ORGANISATION_KIND_SERVICE_PROVIDER,
    OrganisationKind.CLIENT_BUSINESS: identity_pb2.ORGANISATION_KIND_CLIENT_BUSINESS,
    OrganisationKind.ASSOCIATION: identity_pb2.ORGANISATION_KIND_ASSOCIATION,
    OrganisationKind.DELIVERY_PARTNER: identity_pb2.ORGANISATION_KIND_DELIVERY_PARTNER,
    OrganisationKind.WORKSHOP: identity_pb2.ORGANISATION_KIND_WORKSHOP,
    OrganisationKind.ERP_CUSTOMER: identity_pb2.ORGANISATION_KIND_ERP_CUSTOMER,
    OrganisationKind.OPERATOR: identity_pb2.ORGANISATION_KIND_OPERATOR,
}
_KIND_FROM_PROTO: dict[int, str] = {int(value): key for key, value in _KIND_TO_PROTO.items()}
_STATUS_TO_PROTO: dict[str, identity_pb2.UserStatus.ValueType] = {
    UserStatus.PENDING: identity_pb2.USER_STATUS_PENDING,
    UserStatus.ACTIVE: identity_pb2.USER_STATUS_ACTIVE,
    UserStatus.DISABLED: identity_pb2.USER_STATUS_DISABLED,
}


def kind_name(value: int) -> str:
    """The domain's kind for a proto value: "" when unspecified, a non-kind when unknown."""
    if value == identity_pb2.ORGANISATION_KIND_UNSPECIFIED:
        return ""
    return _KIND_FROM_PROTO.get(value, f"#{value}")


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def organisation_to_proto(organisation: Organisation) -> identity_pb2.Organisation:
    return identity_pb2.Organisation(
        id=str(organisation.id),
        kind=_KIND_TO_PROTO[organisation.kind],
        name=organisation.name,
        code=organisation.code or "",
        create_time=_timestamp(organisation.created_at),
        second_factor_required=bool(organisation.second_factor_required),
    )


def user_to_proto(user: User) -> identity_pb2.User:
    return identity_pb2.User(
        id=str(user.id),
        username=user.username,
        email=user.email or "",
        email_verified=user.email_verified,
        profile=identity_pb2.Profile(
            first_name=user.first_name or "",
            last_name=user.last_name or "",
            phone=user.phone or "",
            address_line=user.address_line or "",
            postal_code=user.postal_code or "",
            city=user.city or "",
            birth_date=user.birth_date.isoformat() if user.birth_date else "",
        ),
        profile_complete=not (missing := accounts.profile_missing(user)),
        missing=missing,
        status=_STATUS_TO_PROTO[user.status],
        pending=user.status == UserStatus.PENDING,
        organisation_id=str(user.organisation_id),
        memberships=[
            identity_pb2.Membership(organisation_id=str(m.organisation_id), role=m.role)
            for m in user.memberships
        ],
        create_time=_timestamp(user.created_at),
    )


def audit_to_proto(event: AuditEvent) -> identity_pb2.AuditEvent:
    return identity_pb2.AuditEvent(
        id=str(event.id),
        time=_timestamp(event.time),
        event=event.event,
        actor_id=event.actor_id or "",
        user_id=str(event.user_id) if event.user_id else "",
        detail={key: str(value) for key, value in event.detail.items()},
    )


def token_pair(issued: tokens.IssuedTokens | tokens.Refusal) -> identity_pb2.TokenPair:
    if isinstance(issued, tokens.Refusal):
        raise issued.error
    return identity_pb2.TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        token_type="Bearer",
        expires_in=issued.expires_in,
        refresh_expires_in=issued.refresh_expires_in,
    )


def login_response(
    result: tokens.IssuedTokens | tokens.SecondFactorRequired | tokens.Refusal,
) -> identity_pb2.LoginResponse:
    """A complete sign-in (tokens and device cookie) or the second-factor challenge."""
    if isinstance(result, tokens.SecondFactorRequired):
        return identity_pb2.LoginResponse(
            second_factor=identity_pb2.SecondFactorChallenge(
                ticket=result.ticket, methods=result.methods, expires_in=result.expires_in
            )
        )
    if isinstance(result, tokens.Refusal):
        raise result.error
    return identity_pb2.LoginResponse(tokens=token_pair(result), device_token=result.device_token)


def signed_in(result: tokens.IssuedTokens | tokens.Refusal) -> tuple[identity_pb2.TokenPair, str]:
    """The pair and the device cookie of a complete sign-in (a refusal is raised)."""
    if isinstance(result, tokens.Refusal):
        raise result.error
    return token_pair(result), result.device_token


def passkey_to_proto(passkey: Passkey) -> identity_pb2.Passkey:
    return identity_pb2.Passkey(
        id=str(passkey.id),
        name=passkey.name,
        create_time=_timestamp(passkey.created_at),
        last_use_time=_timestamp(passkey.last_used_at) if passkey.last_used_at else None,
    )


def page_response(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)
