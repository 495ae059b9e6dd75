"""Organisations, roles and the admin's account pages, with who may and who may not."""

from __future__ import annotations

import uuid

import grpc
import pytest
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2

from services.identity.models import UserStatus
from tests.identity.harness import (
    ASSOCIATION,
    CLIENT_BUSINESS,
    DELIVERY_PARTNER,
    ERP_CUSTOMER,
    OPERATOR,
    SERVICE_PROVIDER,
    WORKSHOP,
    Identity,
    Kind,
    fails,
    fields,
    unique,
)

Metadata = tuple[tuple[str, str], ...]


# --- organisations ------------------------------------------------------------------------------


async def test_ops_admin_creates_organisations_with_a_code_unique_per_kind(
    identity: Identity,
) -> None:
    code = unique("c")[:12]
    created = (
        await identity.stub.CreateOrganisation(
            identity_pb2.CreateOrganisationRequest(
                kind=ASSOCIATION, name="Protection 83", code=code
            ),
            metadata=identity.admin,
        )
    ).organisation
    assert created.kind == ASSOCIATION and created.code == code and created.name == "Protection 83"
    assert created.create_time.seconds > 0
    clash = await fails(
        identity.stub.CreateOrganisation(
            identity_pb2.CreateOrganisationRequest(kind=ASSOCIATION, name="Other", code=code),
            metadata=identity.admin,
        )
    )
    assert clash.code == grpc.StatusCode.ALREADY_EXISTS
    assert fields(clash) == {"code"}
    # The same code under another kind is fine.
    await identity.stub.CreateOrganisation(
        identity_pb2.CreateOrganisationRequest(kind=WORKSHOP, name="Garage", code=code),
        metadata=identity.admin,
    )


async def test_create_organisation_names_bad_fields(identity: Identity) -> None:
    problem = await fails(
        identity.stub.CreateOrganisation(
            identity_pb2.CreateOrganisationRequest(code="no spaces allowed"),
            metadata=identity.admin,
        )
    )
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {"kind", "name", "code"}
    unknown_kind = await fails(
        identity.stub.CreateOrganisation(
            identity_pb2.CreateOrganisationRequest(kind=99, name="X"),  # type: ignore[arg-type]
            metadata=identity.admin,
        )
    )
    assert fields(unknown_kind) == {"kind"}


async def test_only_ops_admin_creates_organisations(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    admin = await identity.account(org, "association_admin")
    for metadata in (await identity.token(admin), identity.service):
        problem = await fails(
            identity.stub.CreateOrganisation(
                identity_pb2.CreateOrganisationRequest(kind=ASSOCIATION, name="Mine"),
                metadata=metadata,
            )
        )
        assert problem.code == grpc.StatusCode.PERMISSION_DENIED


async def test_organisations_are_visible_to_their_members_services_and_operators(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    other = await identity.organisation(ASSOCIATION)
    member = await identity.account(org, "member")
    pending = await identity.account(org, status=UserStatus.PENDING)
    request = identity_pb2.GetOrganisationRequest(organisation_id=org)
    for metadata in (
        identity.service,
        identity.admin,
        await identity.token(member),
        await identity.token(pending),  # no role yet, but it is their organisation
    ):
        assert (
            await identity.stub.GetOrganisation(request, metadata=metadata)
        ).organisation.id == org
    stranger = await identity.account(other, "association_admin")
    hidden = await fails(
        identity.stub.GetOrganisation(request, metadata=await identity.token(stranger))
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND
    bad = await fails(
        identity.stub.GetOrganisation(
            identity_pb2.GetOrganisationRequest(organisation_id="12"), metadata=identity.admin
        )
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and fields(bad) == {"organisation_id"}


async def test_list_organisations_pages_by_name(identity: Identity) -> None:
    prefix = unique("Z-list-")
    names = [f"{prefix} {letter}" for letter in "edcba"]
    for name in names:
        await identity.organisation(DELIVERY_PARTNER, name=name)
    seen: list[str] = []
    token = ""
    while True:
        response = await identity.stub.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(
                kind=DELIVERY_PARTNER, page=common_pb2.PageRequest(page_size=2, page_token=token)
            ),
            metadata=identity.service,
        )
        assert len(response.organisations) <= 2
        assert all(o.kind == DELIVERY_PARTNER for o in response.organisations)
        seen += [o.name for o in response.organisations if o.name.startswith(prefix)]
        token = response.page.next_page_token
        if not token:
            break
    assert seen == sorted(names)


async def test_list_organisations_rejects_bad_pages_and_limits_users_to_their_own(
    identity: Identity,
) -> None:
    problem = await fails(
        identity.stub.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(
                page=common_pb2.PageRequest(page_size=501, page_token="garbage!")
            ),
            metadata=identity.admin,
        )
    )
    assert fields(problem) == {"page.page_size", "page.page_token"}
    # A token of another list is not a token of this one.
    members = await identity.stub.ListOrganisationMembers(
        identity_pb2.ListOrganisationMembersRequest(
            organisation_id=await identity.organisation(), page=common_pb2.PageRequest(page_size=1)
        ),
        metadata=identity.admin,
    )
    assert not members.page.next_page_token  # empty organisation
    org = await identity.organisation(ASSOCIATION)
    await identity.account(org, "member")
    await identity.account(org, "member")
    page = await identity.stub.ListOrganisationMembers(
        identity_pb2.ListOrganisationMembersRequest(
            organisation_id=org, page=common_pb2.PageRequest(page_size=1)
        ),
        metadata=identity.admin,
    )
    foreign = await fails(
        identity.stub.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(
                page=common_pb2.PageRequest(page_token=page.page.next_page_token)
            ),
            metadata=identity.admin,
        )
    )
    assert fields(foreign) == {"page.page_token"}
    user = await identity.account(org, "member")
    mine = await identity.stub.ListOrganisations(
        identity_pb2.ListOrganisationsRequest(), metadata=await identity.token(user)
    )
    assert [o.id for o in mine.organisations] == [org]


# --- roles --------------------------------------------------------------------------------------


async def grant(
    identity: Identity, metadata: Metadata, user_id: str, role: str, organisation_id: str = ""
) -> identity_pb2.User:
    response: identity_pb2.GrantRoleResponse = await identity.stub.GrantRole(
        identity_pb2.GrantRoleRequest(user_id=user_id, role=role, organisation_id=organisation_id),
        metadata=metadata,
    )
    return response.user


async def test_org_admin_grants_and_revokes_roles_of_the_org_kind(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    admin = await identity.account(org, "association_admin")
    member = await identity.account(org, "member")
    auth = await identity.token(admin)
    user = await grant(identity, auth, member.id, "association_admin", org)
    assert {m.role for m in user.memberships} == {"association_admin", "member"}
    again = await grant(identity, auth, member.id, "association_admin")  # idempotent
    assert len(again.memberships) == 2
    revoked = await identity.stub.RevokeRole(
        identity_pb2.RevokeRoleRequest(user_id=member.id, role="association_admin"), metadata=auth
    )
    assert {m.role for m in revoked.user.memberships} == {"member"}
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=member.id), metadata=auth
    )
    assert [e.event for e in events.events] == ["role.revoked", "role.granted"]
    assert events.events[1].actor_id == admin.id
    assert events.events[1].detail["role"] == "association_admin"


@pytest.mark.parametrize(
    ("kind", "role"),
    [
        (ASSOCIATION, "editor"),
        (SERVICE_PROVIDER, "member"),
        (DELIVERY_PARTNER, "workshop_owner"),
        (ERP_CUSTOMER, "ops_admin"),
        (CLIENT_BUSINESS, "support_agent"),
    ],
)
async def test_a_role_foreign_to_the_org_kind_is_refused(
    identity: Identity, kind: Kind, role: str
) -> None:
    org = await identity.organisation(kind)
    user = await identity.account(org)
    problem = await fails(grant(identity, identity.admin, user.id, role))
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {"role"}


async def test_grant_role_validates_its_fields(identity: Identity) -> None:
    problem = await fails(grant(identity, identity.admin, "nope", "", "also-nope"))
    assert fields(problem) == {"user_id", "role", "organisation_id"}
    unknown = await fails(grant(identity, identity.admin, str(uuid.uuid4()), "wizard"))
    assert fields(unknown) == {"role"}
    org = await identity.organisation(ASSOCIATION)
    user = await identity.account(org)
    elsewhere = await fails(
        grant(identity, identity.admin, user.id, "member", await identity.organisation())
    )
    assert fields(elsewhere) == {"organisation_id"}


async def test_who_may_not_grant_roles(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    other = await identity.organisation(ASSOCIATION)
    target = await identity.account(org, "member")
    member = await identity.account(org, "member")
    other_admin = await identity.account(other, "association_admin")
    pending_admin = await identity.account(org, "association_admin", status=UserStatus.PENDING)
    same_org = await fails(grant(identity, await identity.token(member), target.id, "member"))
    assert same_org.code == grpc.StatusCode.PERMISSION_DENIED
    # Another tenant's admin does not even learn that the user exists.
    cross = await fails(grant(identity, await identity.token(other_admin), target.id, "member"))
    assert cross.code == grpc.StatusCode.NOT_FOUND
    assert cross.message == "user not found"
    # Roles count only once the account is active.
    pending = await fails(grant(identity, await identity.token(pending_admin), target.id, "member"))
    assert pending.code == grpc.StatusCode.NOT_FOUND
    service = await fails(grant(identity, identity.service, target.id, "member"))
    assert service.code == grpc.StatusCode.PERMISSION_DENIED
    missing = await fails(grant(identity, identity.admin, str(uuid.uuid4()), "member"))
    assert missing.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("kind", "admin_role"),
    [
        (SERVICE_PROVIDER, "business_account_manager"),
        (CLIENT_BUSINESS, "business_account_manager"),
        (DELIVERY_PARTNER, "partner_manager"),
        (WORKSHOP, "workshop_owner"),
    ],
)
async def test_each_kind_has_its_admin_role(
    identity: Identity, kind: Kind, admin_role: str
) -> None:
    org = await identity.organisation(kind)
    admin = await identity.account(org, admin_role)
    user = await identity.account(org)
    await grant(identity, await identity.token(admin), user.id, admin_role)


async def test_editor_is_not_an_admin(identity: Identity) -> None:
    org = await identity.organisation(SERVICE_PROVIDER)
    editor = await identity.account(org, "editor", "program_account_manager")
    user = await identity.account(org)
    problem = await fails(grant(identity, await identity.token(editor), user.id, "read_only"))
    assert problem.code == grpc.StatusCode.PERMISSION_DENIED


async def test_list_members_filters_by_role_for_services(identity: Identity) -> None:
    org = await identity.organisation(SERVICE_PROVIDER)
    manager = await identity.account(org, "business_account_manager", username=unique("a."))
    editor = await identity.account(org, "editor", username=unique("b."))
    await identity.account(org, "read_only", username=unique("c."))
    await identity.account(org, "editor", status=UserStatus.DISABLED)
    response = await identity.stub.ListOrganisationMembers(
        identity_pb2.ListOrganisationMembersRequest(
            organisation_id=org, roles=["editor", "business_account_manager"]
        ),
        metadata=identity.service,
    )
    assert [u.id for u in response.users] == [manager.id, editor.id]
    everyone = await identity.stub.ListOrganisationMembers(
        identity_pb2.ListOrganisationMembersRequest(organisation_id=org),
        metadata=await identity.token(manager),
    )
    assert len(everyone.users) == 4
    bad = await fails(
        identity.stub.ListOrganisationMembers(
            identity_pb2.ListOrganisationMembersRequest(organisation_id=org, roles=["boss"]),
            metadata=identity.service,
        )
    )
    assert fields(bad) == {"roles[0]"}
    stranger = await identity.account(
        await identity.organisation(SERVICE_PROVIDER), "business_account_manager"
    )
    hidden = await fails(
        identity.stub.ListOrganisationMembers(
            identity_pb2.ListOrganisationMembersRequest(organisation_id=org),
            metadata=await identity.token(stranger),
        )
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND
    plain = await fails(
        identity.stub.ListOrganisationMembers(
            identity_pb2.ListOrganisationMembersRequest(organisation_id=org),
            metadata=await identity.token(editor),
        )
    )
    assert plain.code == grpc.StatusCode.PERMISSION_DENIED


# --- accounts -----------------------------------------------------------------------------------


async def test_admin_creates_an_active_account_whose_owner_chooses_a_password(
    identity: Identity,
) -> None:
    org = await identity.organisation(SERVICE_PROVIDER)
    admin = await identity.account(org, "business_account_manager")
    username = unique("Emp.")
    email = f"{username.lower()}@example.org"
    auth = await identity.token(admin)
    user = (
        await identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=org,
                username=username,
                email=email,
                first_name="Paul",
                last_name="Durand",
                roles=["editor", "program_account_manager"],
            ),
            metadata=auth,
        )
    ).user
    assert user.status == identity_pb2.USER_STATUS_ACTIVE
    assert {m.role for m in user.memberships} == {"editor", "program_account_manager"}
    token = await identity.link_token(email, path="/reset-password?token=")
    await identity.stub.ResetPassword(
        identity_pb2.ResetPasswordRequest(token=token, new_password="a brand new passphrase")
    )
    tokens = await identity.login(username, "a brand new passphrase")
    me = await identity.stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {tokens.access_token}"),)
    )
    assert me.user.email_verified  # the link proved the address
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=user.id), metadata=auth
    )
    assert [e.event for e in events.events][-2:] == ["password_reset.sent", "user.created"]


async def test_create_user_without_email_or_roles_gets_the_base_role(identity: Identity) -> None:
    org = await identity.organisation(ERP_CUSTOMER)
    user = (
        await identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=org, username=unique("erp."), first_name="A", last_name="B"
            ),
            metadata=identity.admin,
        )
    ).user
    assert [m.role for m in user.memberships] == ["customer_user"]
    assert user.email == ""
    operator = await identity.organisation(OPERATOR)
    needs_role = await fails(
        identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=operator, username=unique("op."), first_name="A", last_name="B"
            ),
            metadata=identity.admin,
        )
    )
    assert fields(needs_role) == {"roles"}


async def test_create_user_rules(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    existing = await identity.account(org, "member")
    problem = await fails(
        identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=org, username="a", email="nope", roles=["wizard"]
            ),
            metadata=identity.admin,
        )
    )
    assert fields(problem) == {"username", "email", "first_name", "last_name", "roles[0]"}
    foreign_role = await fails(
        identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=org,
                username=unique("x."),
                first_name="A",
                last_name="B",
                roles=["member", "editor"],
            ),
            metadata=identity.admin,
        )
    )
    assert fields(foreign_role) == {"roles[1]"}
    taken = await fails(
        identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=org,
                username=existing.username.upper(),
                first_name="A",
                last_name="B",
            ),
            metadata=identity.admin,
        )
    )
    assert taken.code == grpc.StatusCode.ALREADY_EXISTS and fields(taken) == {"username"}
    member = await identity.account(org, "member")
    denied = await fails(
        identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=org, username=unique("x."), first_name="A", last_name="B"
            ),
            metadata=await identity.token(member),
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


async def test_get_user_for_admins_services_and_the_user(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    admin = await identity.account(org, "association_admin")
    user = await identity.account(org, "member")
    other = await identity.account(org, "member")
    stranger = await identity.account(await identity.organisation(ASSOCIATION), "association_admin")
    request = identity_pb2.GetUserRequest(user_id=user.id)
    for metadata in (
        identity.admin,
        identity.service,
        await identity.token(admin),
        await identity.token(user),
    ):
        assert (await identity.stub.GetUser(request, metadata=metadata)).user.id == user.id
    plain = await fails(identity.stub.GetUser(request, metadata=await identity.token(other)))
    assert plain.code == grpc.StatusCode.PERMISSION_DENIED
    cross = await fails(identity.stub.GetUser(request, metadata=await identity.token(stranger)))
    missing = await fails(
        identity.stub.GetUser(
            identity_pb2.GetUserRequest(user_id=str(uuid.uuid4())),
            metadata=await identity.token(stranger),
        )
    )
    assert cross.code == missing.code == grpc.StatusCode.NOT_FOUND
    assert cross.message == missing.message
    bad = await fails(
        identity.stub.GetUser(identity_pb2.GetUserRequest(user_id="x"), metadata=identity.admin)
    )
    assert fields(bad) == {"user_id"}


async def test_search_ignores_accents_and_case_and_flags_pending_accounts(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    lefevre = await identity.account(org, "member", first_name="Élodie", last_name="Lefèvre")
    lefebvre = await identity.account(
        org, status=UserStatus.PENDING, first_name="ELODIE", last_name="LEFEBVRE"
    )
    lefort = await identity.account(org, "member", first_name="Éric", last_name="Le Fort")
    await identity.account(org, "member", first_name="Elodie", last_name="Martin")
    await identity.account(
        await identity.organisation(ASSOCIATION), first_name="Élodie", last_name="Lefèvre"
    )

    async def search(
        last: str, first: str = "", size: int = 0, token: str = ""
    ) -> identity_pb2.SearchUsersResponse:
        response: identity_pb2.SearchUsersResponse = await identity.stub.SearchUsers(
            identity_pb2.SearchUsersRequest(
                organisation_id=org,
                last_name=last,
                first_name=first,
                page=common_pb2.PageRequest(page_size=size, page_token=token),
            ),
            metadata=identity.admin,
        )
        return response

    assert [u.id for u in (await search("lefe")).users] == [lefebvre.id, lefevre.id]
    assert [u.id for u in (await search("LEFÈV")).users] == [lefevre.id]
    assert [u.id for u in (await search("le", "eric")).users] == [lefort.id]
    assert [u.id for u in (await search("le f")).users] == [lefort.id]
    found = (await search("lef", "élo")).users
    assert [(u.id, u.pending) for u in found] == [(lefebvre.id, True), (lefevre.id, False)]
    first_page = await search("lef", size=1)
    second_page = await search("lef", size=1, token=first_page.page.next_page_token)
    assert [u.id for u in [*first_page.users, *second_page.users]] == [lefebvre.id, lefevre.id]
    assert not second_page.page.next_page_token
    assert (await search("100%_")).users == []  # LIKE wildcards are literal
    nothing = await fails(search(""))
    assert fields(nothing) == {"last_name"}


async def test_accounts_to_validate_lists_only_complete_pending_accounts(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    admin = await identity.account(org, "association_admin")
    ready = await identity.account(org, status=UserStatus.PENDING)
    ready_too = await identity.account(org, status=UserStatus.PENDING)
    await identity.account(org, status=UserStatus.PENDING, complete=False)
    await identity.account(org, status=UserStatus.PENDING, email_verified=False)
    await identity.account(org, status=UserStatus.PENDING, email=None)
    await identity.account(org, "member")
    response = await identity.stub.ListAccountsToValidate(
        identity_pb2.ListAccountsToValidateRequest(organisation_id=org),
        metadata=await identity.token(admin),
    )
    assert [u.id for u in response.users] == [ready.id, ready_too.id]
    assert all(u.pending and u.profile_complete for u in response.users)
    paged = await identity.stub.ListAccountsToValidate(
        identity_pb2.ListAccountsToValidateRequest(
            organisation_id=org, page=common_pb2.PageRequest(page_size=1)
        ),
        metadata=identity.admin,
    )
    rest = await identity.stub.ListAccountsToValidate(
        identity_pb2.ListAccountsToValidateRequest(
            organisation_id=org,
            page=common_pb2.PageRequest(page_size=1, page_token=paged.page.next_page_token),
        ),
        metadata=identity.admin,
    )
    assert [u.id for u in [*paged.users, *rest.users]] == [ready.id, ready_too.id]
    # The incomplete ones, apart, each saying what it lacks (issue 25: the queue said nobody
    # waited while three people did).
    waiting = await identity.stub.ListAccountsToValidate(
        identity_pb2.ListAccountsToValidateRequest(organisation_id=org, incomplete=True),
        metadata=await identity.token(admin),
    )
    assert [list(u.missing) for u in waiting.users] == [
        ["phone", "address_line", "postal_code", "city", "birth_date"],
        ["email_verified"],
        ["email"],
    ]
    assert all(u.pending and not u.profile_complete for u in waiting.users)
    stranger = await identity.account(await identity.organisation(ASSOCIATION), "association_admin")
    hidden = await fails(
        identity.stub.ListAccountsToValidate(
            identity_pb2.ListAccountsToValidateRequest(organisation_id=org),
            metadata=await identity.token(stranger),
        )
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("kind", "base_role"),
    [
        (ASSOCIATION, "member"),
        (ERP_CUSTOMER, "customer_user"),
        (DELIVERY_PARTNER, "partner_manager"),
        (WORKSHOP, "workshop_owner"),
        (CLIENT_BUSINESS, "read_only"),
    ],
)
async def test_validation_activates_and_grants_the_base_role(
    identity: Identity, kind: Kind, base_role: str
) -> None:
    org = await identity.organisation(kind)
    account = await identity.account(org, status=UserStatus.PENDING)
    if kind == ASSOCIATION:
        await identity.pay_fee(account)  # the fee check itself: tests/identity/test_fees.py
    user = (
        await identity.stub.ValidateAccount(
            identity_pb2.ValidateAccountRequest(user_id=account.id), metadata=identity.admin
        )
    ).user
    assert user.status == identity_pb2.USER_STATUS_ACTIVE and not user.pending
    assert [(m.organisation_id, m.role) for m in user.memberships] == [(org, base_role)]
    decoded_roles = (await identity.login(account.username)).access_token
    me = await identity.stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {decoded_roles}"),)
    )
    assert me.user.status == identity_pb2.USER_STATUS_ACTIVE


async def test_validation_keeps_existing_roles_and_is_audited(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    admin = await identity.account(org, "association_admin")
    account = await identity.account(org, "association_admin", status=UserStatus.PENDING)
    await identity.pay_fee(account)
    auth = await identity.token(admin)
    user = (
        await identity.stub.ValidateAccount(
            identity_pb2.ValidateAccountRequest(user_id=account.id), metadata=auth
        )
    ).user
    assert [m.role for m in user.memberships] == ["association_admin"]
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=account.id), metadata=auth
    )
    assert events.events[0].event == "user.validated"
    assert events.events[0].actor_id == admin.id
    again = await fails(
        identity.stub.ValidateAccount(
            identity_pb2.ValidateAccountRequest(user_id=account.id), metadata=auth
        )
    )
    assert again.code == grpc.StatusCode.FAILED_PRECONDITION and again.reason == "not_pending"


async def test_an_incomplete_account_cannot_be_validated_and_the_error_says_why(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    account = await identity.account(
        org, status=UserStatus.PENDING, complete=False, email_verified=False
    )
    problem = await fails(
        identity.stub.ValidateAccount(
            identity_pb2.ValidateAccountRequest(user_id=account.id), metadata=identity.admin
        )
    )
    assert problem.code == grpc.StatusCode.FAILED_PRECONDITION
    assert problem.reason == "profile_incomplete"
    for name in (
        "phone",
        "address_line",
        "postal_code",
        "city",
        "birth_date",
        "e-mail not verified",
    ):
        assert name in problem.message
    # Each missing item as a field the admin's page can name (issue 25), and the same list on
    # the account itself.
    assert fields(problem) == {
        "profile.phone",
        "profile.address_line",
        "profile.postal_code",
        "profile.city",
        "profile.birth_date",
        "email",
    }
    read = await identity.stub.GetUser(
        identity_pb2.GetUserRequest(user_id=account.id), metadata=identity.admin
    )
    assert list(read.user.missing) == [
        "phone",
        "address_line",
        "postal_code",
        "city",
        "birth_date",
        "email_verified",
    ]
    assert not read.user.profile_complete
    plain = await identity.account(org, "member")
    denied = await fails(
        identity.stub.ValidateAccount(
            identity_pb2.ValidateAccountRequest(user_id=account.id),
            metadata=await identity.token(plain),
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


async def test_admin_completes_a_missing_email(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    account = await identity.account(org, "member", email=None)
    address = f"{unique('set.')}@example.org"
    user = (
        await identity.stub.SetUserEmail(
            identity_pb2.SetUserEmailRequest(user_id=account.id, email=address),
            metadata=identity.admin,
        )
    ).user
    assert user.email == address and not user.email_verified
    token = await identity.link_token(address, path="/verify-email?token=")
    await identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=token))
    present = await fails(
        identity.stub.SetUserEmail(
            identity_pb2.SetUserEmailRequest(user_id=account.id, email="other@example.org"),
            metadata=identity.admin,
        )
    )
    assert present.code == grpc.StatusCode.FAILED_PRECONDITION
    assert present.reason == "email_present"
    bad = await fails(
        identity.stub.SetUserEmail(
            identity_pb2.SetUserEmailRequest(user_id="x", email="nope"), metadata=identity.admin
        )
    )
    assert fields(bad) == {"user_id", "email"}


async def test_email_set_on_an_account_without_password_mails_a_choose_password_link(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    account = await identity.account(org, "member", email=None, password=None)
    address = f"{unique('nopw.')}@example.org"
    await identity.stub.SetUserEmail(
        identity_pb2.SetUserEmailRequest(user_id=account.id, email=address),
        metadata=identity.admin,
    )
    token = await identity.link_token(address, path="/reset-password?token=")
    await identity.stub.ResetPassword(
        identity_pb2.ResetPasswordRequest(token=token, new_password="my own new passphrase")
    )
    await identity.login(account.username, "my own new passphrase")


async def test_admin_resends_a_password_link_never_a_password(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    admin = await identity.account(org, "association_admin")
    account = await identity.account(org, "member")
    auth = await identity.token(admin)
    await identity.stub.SendPasswordReset(
        identity_pb2.SendPasswordResetRequest(user_id=account.id), metadata=auth
    )
    assert account.email is not None
    [mail] = await identity.smtp.wait_for(account.email)
    assert account.password not in mail.body
    assert "/reset-password?token=" in mail.body
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=account.id), metadata=auth
    )
    assert events.events[0].event == "password_reset.sent"
    assert events.events[0].actor_id == admin.id
    assert events.events[0].detail["expires_at"]
    no_email = await identity.account(org, "member", email=None)
    problem = await fails(
        identity.stub.SendPasswordReset(
            identity_pb2.SendPasswordResetRequest(user_id=no_email.id), metadata=auth
        )
    )
    assert problem.code == grpc.StatusCode.FAILED_PRECONDITION and problem.reason == "email_missing"
    stranger = await identity.account(await identity.organisation(ASSOCIATION), "association_admin")
    hidden = await fails(
        identity.stub.SendPasswordReset(
            identity_pb2.SendPasswordResetRequest(user_id=account.id),
            metadata=await identity.token(stranger),
        )
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND


async def test_operator_recovers_a_username_after_checking_identity(identity: Identity) -> None:
    org = await identity.organisation(DELIVERY_PARTNER)
    address = f"{unique('shop.')}@example.org"
    first = await identity.account(org, "partner_manager", email=address)
    second = await identity.account(org, "partner_manager", email=address)
    operator = await identity.organisation(OPERATOR)
    agent = await identity.account(operator, "support_agent")
    auth = await identity.token(agent)
    await identity.stub.RecoverUsername(
        identity_pb2.RecoverUsernameRequest(email=address.upper(), verification_reference="T-42"),
        metadata=auth,
    )
    [mail] = await identity.smtp.wait_for(address)
    assert first.username in mail.body and second.username in mail.body
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=first.id), metadata=identity.admin
    )
    assert events.events[0].event == "username.recovered"
    assert events.events[0].actor_id == agent.id
    assert events.events[0].detail["verification_reference"] == "T-42"
    # The same empty answer for an address nobody uses.
    answer = await identity.stub.RecoverUsername(
        identity_pb2.RecoverUsernameRequest(
            email=f"{unique('nobody.')}@example.org", verification_reference="T-43"
        ),
        metadata=auth,
    )
    assert answer == identity_pb2.RecoverUsernameResponse()
    missing = await fails(
        identity.stub.RecoverUsername(
            identity_pb2.RecoverUsernameRequest(email=address), metadata=auth
        )
    )
    assert fields(missing) == {"verification_reference"}


async def test_only_operator_staff_recover_usernames(identity: Identity) -> None:
    org = await identity.organisation(DELIVERY_PARTNER)
    manager = await identity.account(org, "partner_manager")
    request = identity_pb2.RecoverUsernameRequest(
        email="someone@example.org", verification_reference="T-1"
    )
    for metadata in (await identity.token(manager), identity.service):
        problem = await fails(identity.stub.RecoverUsername(request, metadata=metadata))
        assert problem.code == grpc.StatusCode.PERMISSION_DENIED


async def test_audit_pages_newest_first(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    account = await identity.account(org, "member")
    for _ in range(3):
        await identity.login(account.username)
    seen: list[str] = []
    token = ""
    while True:
        page = await identity.stub.ListAuditEvents(
            identity_pb2.ListAuditEventsRequest(
                user_id=account.id, page=common_pb2.PageRequest(page_size=2, page_token=token)
            ),
            metadata=identity.admin,
        )
        seen += [e.id for e in page.events]
        times = [e.time.ToDatetime() for e in page.events]
        assert times == sorted(times, reverse=True)
        token = page.page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 3
    stranger = await identity.account(await identity.organisation(ASSOCIATION), "association_admin")
    hidden = await fails(
        identity.stub.ListAuditEvents(
            identity_pb2.ListAuditEventsRequest(user_id=account.id),
            metadata=await identity.token(stranger),
        )
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND


async def test_an_admin_finds_an_account_by_username_or_e_mail_ignoring_case(
    identity: Identity,
) -> None:
    org = await identity.organisation(WORKSHOP)
    admin = await identity.account(org, "workshop_owner")
    wanted = await identity.account(org, status=UserStatus.PENDING, username=unique("Vidal."))
    await identity.account(org, status=UserStatus.PENDING)
    other_org = await identity.organisation(WORKSHOP)
    await identity.account(other_org, username=unique("Vidal."))
    token = await identity.token(admin)
    for login in (wanted.username.upper(), f"{wanted.username.lower()}@EXAMPLE.org"):
        found = await identity.stub.SearchUsers(
            identity_pb2.SearchUsersRequest(organisation_id=org, login=login), metadata=token
        )
        assert [u.id for u in found.users] == [wanted.id], login
    nothing = await identity.stub.SearchUsers(
        identity_pb2.SearchUsersRequest(organisation_id=org, login="vidal"), metadata=token
    )
    assert list(nothing.users) == []  # whole names only: no prefix of a username


async def test_an_invitation_link_names_an_organisation_only_if_it_accepts_sign_up(
    identity: Identity,
) -> None:
    """Public (no token): what the registration page shows instead of an id to type."""
    workshop = await identity.organisation(WORKSHOP)
    named = await identity.stub.GetRegistrationOrganisation(
        identity_pb2.GetRegistrationOrganisationRequest(organisation_id=workshop)
    )
    assert named.organisation.id == workshop and named.organisation.name
    provider = await identity.organisation(SERVICE_PROVIDER)
    closed = await fails(
        identity.stub.GetRegistrationOrganisation(
            identity_pb2.GetRegistrationOrganisationRequest(organisation_id=provider)
        )
    )
    assert (closed.code, closed.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "self_registration_closed",
    )
    unknown = await fails(
        identity.stub.GetRegistrationOrganisation(
            identity_pb2.GetRegistrationOrganisationRequest(organisation_id=str(uuid.uuid4()))
        )
    )
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    malformed = await fails(
        identity.stub.GetRegistrationOrganisation(
            identity_pb2.GetRegistrationOrganisationRequest(organisation_id="not-an-id")
        )
    )
    assert malformed.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_validated_member_is_told_by_mail(identity: Identity) -> None:
    org = await identity.organisation(WORKSHOP)
    account = await identity.account(org, status=UserStatus.PENDING)
    assert account.email is not None
    address = account.email
    before = identity.mails_to(address)
    await identity.stub.ValidateAccount(
        identity_pb2.ValidateAccountRequest(user_id=account.id), metadata=identity.admin
    )
    mails = await identity.smtp.wait_for(address, count=before + 1)
    assert mails[-1].subject == "Votre compte est validé"
    assert account.username in mails[-1].body
