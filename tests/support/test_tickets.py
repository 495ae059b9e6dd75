"""Tickets: the form, statuses, who sees what, history, consulting, attachments, partners'
messages, deflection, the queue and the reports — on the real database over real gRPC."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.support.v1 import support_pb2 as pb
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from services.kit.smtpsink import SmtpSink
from services.kit.temporal import TENANT, TICKET, TICKET_NUMBER
from services.support.models import SlaPause, SlaSignal, outbox
from tests.identity.harness import DELIVERY_PARTNER, ERP_CUSTOMER, fails, fields, unique
from tests.support.harness import Support, eventually
from workflows.contracts.support import SLA_SHAPE_RECEIPT, sla_workflow_id
from workflows.ticket_sla import TicketSla

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
FORM_FIELDS = {"category_id", "title", "description", "screen_code", "example_record"}


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


async def test_the_form_names_every_missing_field(support: Support) -> None:
    _, _, customer = await support.customer()
    problem = await fails(support.stub.OpenTicket(pb.OpenTicketRequest(), metadata=customer))
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == FORM_FIELDS
    assert all(why == "is required" for _, why in problem.violations)
    category = await support.category()
    blanks = await fails(
        support.stub.OpenTicket(
            pb.OpenTicketRequest(
                category_id=category.id, title="  ", description="x", screen_code="ATW0001"
            ),
            metadata=customer,
        )
    )
    assert fields(blanks) == {"title", "example_record"}
    partner_category = await support.category(pb.CATEGORY_AUDIENCE_PARTNER)
    wrong_form = await fails(support.open(customer, partner_category.id))
    assert fields(wrong_form) == {"category_id"}


async def test_only_a_company_under_contract_opens_tickets(support: Support) -> None:
    category = await support.category()
    org = await support.identity.organisation()
    stranger = await support.identity.account(org, "member")
    refused = await fails(support.open(await support.login(stranger), category.id))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    uncovered = await support.identity.organisation(ERP_CUSTOMER)
    user = await support.identity.account(uncovered, "customer_user")
    no_contract = await fails(support.open(await support.login(user), category.id))
    assert no_contract.code == grpc.StatusCode.FAILED_PRECONDITION
    assert no_contract.reason == "no_contract"


async def test_a_company_sees_all_its_tickets_and_nobody_elses(support: Support) -> None:
    category = await support.category()
    plan = await support.plan()
    org, account, customer = await support.customer(plan.id)
    colleague = await support.login(await support.identity.account(org, "customer_user"))
    _, _, rival = await support.customer(plan.id)
    word = unique("menuiserie")
    mine = await support.open(customer, category.id, title=f"Écran {word} bloqué")
    theirs = await support.open(colleague, category.id, screen_code="FAT0100")
    other = await support.open(rival, category.id)
    _, agent = await support.agent()
    await support.stub.ChangeTicketStatus(
        pb.ChangeTicketStatusRequest(ticket_id=theirs.id, status=pb.TICKET_STATUS_FINISHED),
        metadata=agent,
    )

    listed = await support.stub.ListTickets(pb.ListTicketsRequest(), metadata=customer)
    assert [t.id for t in listed.tickets] == [theirs.id, mine.id]  # newest first, any status
    assert listed.tickets[1].organisation_name and listed.tickets[1].category_name == "Facturation"
    found = await support.stub.ListTickets(
        pb.ListTicketsRequest(query=word.upper().replace("E", "É", 1)), metadata=customer
    )
    assert [t.id for t in found.tickets] == [mine.id]
    by_number = await support.stub.ListTickets(
        pb.ListTicketsRequest(query=f"#{theirs.number}"), metadata=customer
    )
    assert [t.id for t in by_number.tickets] == [theirs.id]
    finished = await support.stub.ListTickets(
        pb.ListTicketsRequest(statuses=[pb.TICKET_STATUS_FINISHED]), metadata=customer
    )
    assert [t.id for t in finished.tickets] == [theirs.id]
    first_page = await support.stub.ListTickets(
        pb.ListTicketsRequest(page=common_pb2.PageRequest(page_size=1)), metadata=customer
    )
    second_page = await support.stub.ListTickets(
        pb.ListTicketsRequest(
            page=common_pb2.PageRequest(page_size=1, page_token=first_page.page.next_page_token)
        ),
        metadata=customer,
    )
    assert [t.id for t in (*first_page.tickets, *second_page.tickets)] == [theirs.id, mine.id]
    assert not second_page.page.next_page_token

    hidden = await fails(
        support.stub.GetTicket(pb.GetTicketRequest(ticket_id=other.id), metadata=customer)
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND
    malformed = await fails(
        support.stub.GetTicket(pb.GetTicketRequest(ticket_id="not-a-uuid"), metadata=customer)
    )
    assert malformed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(malformed) == {"ticket_id"}
    unknown = await fails(
        support.stub.GetTicket(
            pb.GetTicketRequest(ticket_id="6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"),
            metadata=customer,
        )
    )
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    reply = await fails(
        support.stub.ReplyToTicket(
            pb.ReplyToTicketRequest(ticket_id=other.id, body="Bonjour"), metadata=customer
        )
    )
    assert reply.code == grpc.StatusCode.NOT_FOUND
    spying = await support.stub.ListTickets(
        pb.ListTicketsRequest(organisation_id=other.organisation_id), metadata=customer
    )
    assert list(spying.tickets) == []
    everyone = await support.stub.ListTickets(
        pb.ListTicketsRequest(organisation_id=other.organisation_id), metadata=agent
    )
    assert [t.id for t in everyone.tickets] == [other.id]
    assert account.organisation_id == org


async def test_statuses_follow_the_allowed_transitions(support: Support) -> None:
    category = await support.category()
    _, _, customer = await support.customer()
    _, agent = await support.agent()
    ticket = await support.open(customer, category.id)
    assert ticket.status == pb.TICKET_STATUS_OPEN

    answered = await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=ticket.id, body="Nous regardons."), metadata=agent
    )
    assert answered.ticket.status == pb.TICKET_STATUS_IN_PROGRESS
    assert answered.ticket.HasField("first_response_time")
    waiting = await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=ticket.id,
            body="Quel est le code client ?",
            set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
        ),
        metadata=agent,
    )
    assert waiting.ticket.status == pb.TICKET_STATUS_WAITING_ON_CUSTOMER
    assert not waiting.ticket.HasField("next_due_time")  # the clocks are paused
    back = await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=ticket.id, body="Le client 100."), metadata=customer
    )
    assert back.ticket.status == pb.TICKET_STATUS_IN_PROGRESS
    assert back.message.side == pb.AUTHOR_SIDE_CUSTOMER

    not_theirs = await fails(
        support.stub.ChangeTicketStatus(
            pb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED),
            metadata=customer,
        )
    )
    assert not_theirs.code == grpc.StatusCode.PERMISSION_DENIED
    no_status_by_customer = await fails(
        support.stub.ReplyToTicket(
            pb.ReplyToTicketRequest(
                ticket_id=ticket.id, body="x", set_status=pb.TICKET_STATUS_FINISHED
            ),
            metadata=customer,
        )
    )
    assert fields(no_status_by_customer) == {"set_status"}
    done = await support.stub.ChangeTicketStatus(
        pb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED),
        metadata=agent,
    )
    assert done.ticket.status == pb.TICKET_STATUS_FINISHED and done.ticket.HasField("close_time")
    reopen = await fails(
        support.stub.ChangeTicketStatus(
            pb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_IN_PROGRESS),
            metadata=agent,
        )
    )
    assert reopen.code == grpc.StatusCode.FAILED_PRECONDITION
    assert reopen.reason == "transition_not_allowed"
    assert "finished" in reopen.message and "in_progress" in reopen.message
    late = await fails(
        support.stub.ReplyToTicket(
            pb.ReplyToTicketRequest(ticket_id=ticket.id, body="Encore moi"), metadata=customer
        )
    )
    assert late.code == grpc.StatusCode.FAILED_PRECONDITION and late.reason == "ticket_closed"

    history = await support.history(ticket.id, customer)
    assert [m.side for m in history.messages] == [
        pb.AUTHOR_SIDE_AGENT,
        pb.AUTHOR_SIDE_AGENT,
        pb.AUTHOR_SIDE_CUSTOMER,
    ]
    assert [m.body for m in history.messages][-1] == "Le client 100."
    [pause] = history.pauses
    assert pause.HasField("end_time")
    kinds = [e.kind for e in history.events]
    assert kinds == [pb.SLA_EVENT_KIND_PAUSE, pb.SLA_EVENT_KIND_RESUME]
    clocks = {(c.clock, c.cycle): c for c in history.clocks}
    assert clocks[(pb.SLA_CLOCK_FIRST_RESPONSE, 1)].met
    assert clocks[(pb.SLA_CLOCK_NEXT_RESPONSE, 1)].stopped  # closed by finishing
    assert all(c.stopped for c in history.clocks)

    cancelled = await support.open(customer, category.id)
    by_customer = await support.stub.ChangeTicketStatus(
        pb.ChangeTicketStatusRequest(
            ticket_id=cancelled.id, status=pb.TICKET_STATUS_CANCELLED, reason="Résolu seul"
        ),
        metadata=customer,
    )
    assert by_customer.ticket.status == pb.TICKET_STATUS_CANCELLED


async def test_support_or_consulting_and_billable_time(support: Support) -> None:
    category = await support.category()
    _, _, customer = await support.customer()
    _, agent = await support.agent()
    ticket = await support.open(customer, category.id)
    not_consulting = await fails(
        support.stub.LogConsultingTime(
            pb.LogConsultingTimeRequest(ticket_id=ticket.id, minutes=30), metadata=agent
        )
    )
    assert not_consulting.reason == "not_consulting"
    by_customer = await fails(
        support.stub.ClassifyTicket(
            pb.ClassifyTicketRequest(ticket_id=ticket.id, kind=pb.TICKET_KIND_CONSULTING),
            metadata=customer,
        )
    )
    assert by_customer.code == grpc.StatusCode.PERMISSION_DENIED
    await support.stub.ClassifyTicket(
        pb.ClassifyTicketRequest(ticket_id=ticket.id, kind=pb.TICKET_KIND_CONSULTING),
        metadata=agent,
    )
    bad = await fails(
        support.stub.LogConsultingTime(
            pb.LogConsultingTimeRequest(ticket_id=ticket.id, minutes=0), metadata=agent
        )
    )
    assert fields(bad) == {"minutes"}
    for minutes in (45, 30):
        logged = await support.stub.LogConsultingTime(
            pb.LogConsultingTimeRequest(ticket_id=ticket.id, minutes=minutes, note="Analyse"),
            metadata=agent,
        )
    assert logged.ticket.consulting_minutes == 75
    assert logged.ticket.kind == pb.TICKET_KIND_CONSULTING
    stays = await fails(
        support.stub.ClassifyTicket(
            pb.ClassifyTicketRequest(ticket_id=ticket.id, kind=pb.TICKET_KIND_SUPPORT),
            metadata=agent,
        )
    )
    assert stays.reason == "consulting_logged"
    history = await support.history(ticket.id, customer)
    assert [e.minutes for e in history.consulting] == [45, 30]


async def test_attachments_are_checked_and_private(support: Support) -> None:
    category = await support.category()
    _, _, customer = await support.customer()
    _, _, rival = await support.customer()
    ticket = await support.open(customer, category.id)
    added = await support.stub.AddAttachment(
        pb.AddAttachmentRequest(
            ticket_id=ticket.id,
            filename="C:\\Users\\julie\\capture.png",
            content_type="image/png",
            content=PNG,
        ),
        metadata=customer,
    )
    attachment = added.attachment
    assert (attachment.filename, attachment.size_bytes) == ("capture.png", len(PNG))
    assert attachment.sha256 == hashlib.sha256(PNG).hexdigest()
    fetched = await support.stub.GetAttachment(
        pb.GetAttachmentRequest(attachment_id=attachment.id), metadata=customer
    )
    assert fetched.content == PNG
    hidden = await fails(
        support.stub.GetAttachment(
            pb.GetAttachmentRequest(attachment_id=attachment.id), metadata=rival
        )
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND
    wrong_type = await fails(
        support.stub.AddAttachment(
            pb.AddAttachmentRequest(
                ticket_id=ticket.id,
                filename="x.exe",
                content_type="application/x-msdownload",
                content=b"MZ",
            ),
            metadata=customer,
        )
    )
    assert fields(wrong_type) == {"content_type"}
    disguised = await fails(
        support.stub.AddAttachment(
            pb.AddAttachmentRequest(
                ticket_id=ticket.id,
                filename="x.pdf",
                content_type="application/pdf",
                content=b"MZ not a pdf",
            ),
            metadata=customer,
        )
    )
    assert fields(disguised) == {"content"}
    too_big = await fails(
        support.stub.AddAttachment(
            pb.AddAttachmentRequest(
                ticket_id=ticket.id,
                filename="big.txt",
                content_type="text/plain",
                content=b"a" * (support.settings.attachment_max_bytes + 1),
            ),
            metadata=customer,
        )
    )
    assert fields(too_big) == {"content"}
    history = await support.history(ticket.id, customer)
    assert [a.id for a in history.attachments] == [attachment.id]


async def test_partner_messages_are_answered_by_mail(support: Support, smtp_sink: SmtpSink) -> None:
    operations = f"{unique('ops.')}@napoli.example.org"
    _, partner_user, partner = await support.customer(
        kind=DELIVERY_PARTNER, operations_email=operations
    )
    invoices = await support.category(pb.CATEGORY_AUDIENCE_PARTNER)
    _, agent = await support.agent()
    missing = await fails(
        support.stub.SendPartnerMessage(pb.SendPartnerMessageRequest(), metadata=partner)
    )
    assert fields(missing) == {"category_id", "subject", "body"}

    default = await support.stub.SendPartnerMessage(
        pb.SendPartnerMessageRequest(
            category_id=invoices.id, subject="Paiement manquant", body="Période du 1er au 15 mars."
        ),
        metadata=partner,
    )
    assert default.ticket.reply_to_email == operations
    assert default.ticket.channel == pb.TICKET_CHANNEL_PARTNER_MESSAGE
    named = f"{unique('compta.')}@napoli.example.org"
    other = await support.stub.SendPartnerMessage(
        pb.SendPartnerMessageRequest(
            category_id=invoices.id,
            subject="Facture",
            body=f"Commande 8812 : merci de répondre à {named} plutôt.",
        ),
        metadata=partner,
    )
    assert other.ticket.reply_to_email == named
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=other.ticket.id, body="Le paiement part demain."),
        metadata=agent,
    )
    [mail] = await smtp_sink.wait_for(named, within=30)
    assert f"#{other.ticket.number}" in mail.subject
    assert "Le paiement part demain." in mail.body
    assert smtp_sink.to(operations) == []
    customer_form = await fails(support.open(partner, (await support.category()).id))
    assert customer_form.code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert partner_user.organisation_id == default.ticket.organisation_id

    # The partners service forwards a message recorded while support was away (service token).
    worker = await support.service()
    nameless = await fails(
        support.stub.SendPartnerMessage(
            pb.SendPartnerMessageRequest(category_id=invoices.id, subject="S", body="B"),
            metadata=worker,
        )
    )
    assert fields(nameless) == {"organisation_id"}
    forwarded = await support.stub.SendPartnerMessage(
        pb.SendPartnerMessageRequest(
            category_id=invoices.id,
            subject="Rupture de stock",
            body="Commande 9911 annulée.",
            organisation_id=partner_user.organisation_id,
        ),
        metadata=worker,
    )
    assert forwarded.ticket.reply_to_email == operations
    assert forwarded.ticket.opened_by_name == "worker"
    categories = await support.stub.ListCategories(pb.ListCategoriesRequest(), metadata=worker)
    assert invoices.id in {c.id for c in categories.categories}
    erp_org, _, _ = await support.customer()
    not_a_store = await fails(
        support.stub.SendPartnerMessage(
            pb.SendPartnerMessageRequest(
                category_id=invoices.id, subject="S", body="B", organisation_id=erp_org
            ),
            metadata=worker,
        )
    )
    assert not_a_store.reason == "no_contract"


async def test_the_customer_is_mailed_each_agent_reply(
    support: Support, smtp_sink: SmtpSink
) -> None:
    """An extranet ticket's receipt and answers go to the opener's verified address, read from
    identity each time (with support's service token: the agent may not read the account),
    statuses said in words; the customer's own messages, and an opener without a verified
    address, get no mail."""
    category = await support.category()
    org, account, customer = await support.customer()
    _, agent = await support.agent()
    assert account.email
    ticket = await support.open(customer, category.id)
    [receipt] = await smtp_sink.wait_for(account.email, within=30)
    assert receipt.subject == f"[Guichet #{ticket.number}] Demande reçue : {ticket.title}"
    assert "catégorie : Facturation, priorité : normale" in receipt.body

    async def mailed(message_id: str) -> bool:
        async with support.sessions() as session:
            found = await session.scalar(
                select(outbox.c.id).where(outbox.c.workflow_id == f"mail/{message_id}")
            )
        return found is not None

    async def sla_start(ticket_id: str) -> tuple[dict[str, object], dict[str, object]]:
        async with support.sessions() as session:
            row = (
                await session.execute(
                    select(outbox.c.argument, outbox.c.search_attributes).where(
                        outbox.c.workflow_id == sla_workflow_id(ticket_id)
                    )
                )
            ).one()
        return row.argument, row.search_attributes

    # The receipt went with the start of the ticket's SLA run, which sent it: no mail run of its
    # own, the body sealed, and the run found as the receipt's ("did it go out?").
    argument, attributes = await sla_start(ticket.id)
    assert argument["shape"] == SLA_SHAPE_RECEIPT
    sent = argument["receipt"]
    assert isinstance(sent, dict)
    assert (sent["mail_id"], sent["to"]) == (f"ticket-{ticket.id}-opened", [account.email])
    assert sent["subject"] == receipt.subject
    assert "Facturation" not in sent["sealed_body"]
    assert attributes["GuichetMailKind"] == "ticket_opened"
    assert not await mailed(f"ticket-{ticket.id}-opened")

    asked = await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=ticket.id,
            body="Quel est le code du client ?",
            set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
        ),
        metadata=agent,
    )
    received = await smtp_sink.wait_for(account.email, count=2, within=30)
    [mail] = [m for m in received if m.subject != receipt.subject]
    assert mail.subject == f"[Guichet #{ticket.number}] Re: {ticket.title}"
    assert "Quel est le code du client ?" in mail.body
    assert "(statut : en attente de votre réponse)" in mail.body
    assert "waiting_on_customer" not in mail.body
    assert await mailed(asked.message.id)
    answered = await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=ticket.id, body="Le client 100."), metadata=customer
    )
    assert answered.ticket.status == pb.TICKET_STATUS_IN_PROGRESS
    assert not await mailed(answered.message.id)
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=ticket.id, body="Corrigé dans la version 12.4."),
        metadata=agent,
    )
    mails = await smtp_sink.wait_for(account.email, count=3, within=30)
    assert any("Corrigé dans la version 12.4." in m.body for m in mails)

    unverified = await support.identity.account(org, "customer_user", email_verified=False)
    quiet = await support.open(await support.login(unverified), category.id)
    argument, attributes = await sla_start(quiet.id)
    assert argument["receipt"] is None
    assert "GuichetMailKind" not in attributes
    assert not await mailed(f"ticket-{quiet.id}-opened")
    reply = await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=quiet.id, body="Nous regardons."), metadata=agent
    )
    assert reply.ticket.status == pb.TICKET_STATUS_IN_PROGRESS
    assert not await mailed(reply.message.id)


async def test_deflection_the_queue_and_the_report(support: Support) -> None:
    calendar = await support.calendar(weekly_hours=["00:00-24:00"] * 7, country="")
    plan = await support.plan(calendar.id, minutes=(60, 120, 600))
    category = await support.category()
    org, _, customer = await support.customer(plan.id)
    _, agent = await support.agent()
    start = datetime.now(UTC) - timedelta(minutes=1)

    read = await support.stub.ViewCategory(
        pb.ViewCategoryRequest(category_id=category.id), metadata=customer
    )
    assert [e.question for e in read.category.entries] == ["La facture ne s'imprime pas"]
    again = await support.stub.ViewCategory(
        pb.ViewCategoryRequest(category_id=category.id), metadata=customer
    )
    assert again.view_id == read.view_id  # a reload is the same visit
    await support.stub.RecordDeflection(
        pb.RecordDeflectionRequest(view_id=read.view_id), metadata=customer
    )
    _, _, colleague = await support.customer(plan.id)
    view = await support.stub.ViewCategory(
        pb.ViewCategoryRequest(category_id=category.id), metadata=colleague
    )
    urgent = await support.open(
        colleague, category.id, view_id=view.view_id, priority=pb.TICKET_PRIORITY_URGENT
    )
    refused = await fails(
        support.stub.RecordDeflection(
            pb.RecordDeflectionRequest(view_id=view.view_id), metadata=colleague
        )
    )
    assert refused.reason == "ticket_opened"
    calm = await support.open(customer, category.id, priority=pb.TICKET_PRIORITY_LOW)

    not_agent = await fails(support.stub.ListQueue(pb.ListQueueRequest(), metadata=customer))
    assert not_agent.code == grpc.StatusCode.PERMISSION_DENIED
    queue = await support.stub.ListQueue(pb.ListQueueRequest(), metadata=agent)
    positions = [t.id for t in queue.tickets]
    assert positions.index(urgent.id) < positions.index(calm.id)  # nearest deadline first

    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=calm.id, body="Voilà.", set_status=pb.TICKET_STATUS_FINISHED
        ),
        metadata=agent,
    )
    await support.stub.ClassifyTicket(
        pb.ClassifyTicketRequest(ticket_id=urgent.id, kind=pb.TICKET_KIND_CONSULTING),
        metadata=agent,
    )
    await support.stub.LogConsultingTime(
        pb.LogConsultingTimeRequest(ticket_id=urgent.id, minutes=90), metadata=agent
    )
    report = await support.stub.GetSlaReport(
        pb.GetSlaReportRequest(
            plan_id=plan.id,
            period_start=stamp(start),
            period_end=stamp(datetime.now(UTC) + timedelta(minutes=1)),
        ),
        metadata=agent,
    )
    [figures] = report.plans
    assert figures.tickets_opened == 2
    targets = {t.clock: t for t in figures.targets}
    first = targets[pb.SLA_CLOCK_FIRST_RESPONSE]
    assert (first.measured, first.within, first.within_percent) == (1, 1, 100.0)
    assert targets[pb.SLA_CLOCK_RESOLUTION].measured == 1
    [deflection] = [d for d in report.deflections if d.category_id == category.id]
    assert (deflection.views, deflection.deflections, deflection.tickets) == (2, 1, 1)
    [consulting] = report.consulting
    assert consulting.organisation_id != org  # the colleague's company opened it
    assert consulting.minutes == 90 and consulting.tickets == 1
    customers_cannot = await fails(
        support.stub.GetSlaReport(
            pb.GetSlaReportRequest(period_start=stamp(start), period_end=stamp(start)),
            metadata=customer,
        )
    )
    assert customers_cannot.code == grpc.StatusCode.PERMISSION_DENIED
    backwards = await fails(
        support.stub.GetSlaReport(
            pb.GetSlaReportRequest(period_start=stamp(start), period_end=stamp(start)),
            metadata=agent,
        )
    )
    assert fields(backwards) == {"period_end"}


async def test_the_sla_workflow_starts_with_the_ticket_and_ends_with_it(
    support: Support, temporal_env: WorkflowEnvironment
) -> None:
    """On the real dev server: started through the outbox, findable by ticket, every event
    delivered through the signal outbox, ended by finishing."""
    category = await support.category()
    _, _, customer = await support.customer()
    _, agent = await support.agent()
    ticket = await support.open(customer, category.id)
    handle = temporal_env.client.get_workflow_handle_for(TicketSla.run, sla_workflow_id(ticket.id))

    async def described() -> object:
        try:
            return await handle.describe()
        except Exception:
            return None

    description = await eventually(described)
    assert description.typed_search_attributes.get(TICKET) == ticket.id  # type: ignore[attr-defined]
    assert description.typed_search_attributes.get(TENANT) == ticket.organisation_id  # type: ignore[attr-defined]
    assert description.typed_search_attributes.get(TICKET_NUMBER) == ticket.number  # type: ignore[attr-defined]

    async def found_by_number() -> list[str]:
        """What an operator types in the Temporal UI: the number the customer quotes."""
        query = f"GuichetTicketNumber = {ticket.number}"
        found = [run.id async for run in temporal_env.client.list_workflows(query)]
        return found if sla_workflow_id(ticket.id) in found else []

    # The SLA timer, and the ticket's mails (its receipt) beside it: nothing of another ticket.
    found = await eventually(found_by_number)
    assert all(
        run == sla_workflow_id(ticket.id) or run.startswith(f"mail/ticket-{ticket.id}")
        for run in found
    ), found
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=ticket.id, body="?", set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER
        ),
        metadata=agent,
    )
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(ticket_id=ticket.id, body="!"), metadata=customer
    )

    async def caught_up() -> object:
        state = await handle.query(TicketSla.state)
        return state if state is not None and state.last_seq == 2 else None

    state = await eventually(caught_up)
    assert [c.clock for c in state.clocks if c.stopped_at is None] == [  # type: ignore[attr-defined]
        "resolution",
        "next_response",
    ]
    assert len(state.pauses) == 1  # type: ignore[attr-defined]
    await support.stub.ChangeTicketStatus(
        pb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED),
        metadata=agent,
    )
    result = await handle.result()
    assert (result.status, result.pauses) == ("finished", 1)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    async def all_delivered() -> bool | None:
        """The relay marks a signal sent once Temporal answered it, which may come after the
        run it ended has completed: wait for that mark, not for the run."""
        async with support.sessions.begin() as session:
            pending = await session.scalar(
                select(SlaSignal.id).where(
                    SlaSignal.workflow_id == sla_workflow_id(ticket.id),
                    SlaSignal.sent_at.is_(None),
                )
            )
        return True if pending is None else None

    assert await eventually(all_delivered)
    async with support.sessions.begin() as session:
        started = await session.scalar(
            select(outbox.c.started_at).where(outbox.c.workflow_id == sla_workflow_id(ticket.id))
        )
    assert started is not None


async def test_only_the_worker_records_sla_events(support: Support) -> None:
    category = await support.category()
    _, _, customer = await support.customer()
    ticket = await support.open(customer, category.id)
    _, agent = await support.agent()
    for caller in (customer, agent):
        refused = await fails(
            support.stub.RecordSlaEvent(
                pb.RecordSlaEventRequest(
                    ticket_id=ticket.id,
                    kind=pb.SLA_EVENT_KIND_BREACH,
                    clock=pb.SLA_CLOCK_FIRST_RESPONSE,
                    cycle=1,
                    due_time=stamp(datetime.now(UTC)),
                ),
                metadata=caller,
            )
        )
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED


async def test_a_threshold_reported_after_its_clock_paused_is_not_recorded(
    support: Support,
) -> None:
    """Today's runs wake two seconds ahead of a threshold and report it on the instant: a pause
    (waiting on the customer) that came in between stopped the clock before it was due, so
    nothing is recorded; a threshold that fell due before the pause still is."""
    category = await support.category()
    _, _, customer = await support.customer()
    ticket = await support.open(customer, category.id)
    _, agent = await support.agent()
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=ticket.id,
            body="Pouvez-vous préciser ?",
            set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
        ),
        metadata=agent,
    )
    async with support.sessions.begin() as session:
        paused_at = await session.scalar(
            select(SlaPause.started_at).where(SlaPause.ticket_id == uuid.UUID(ticket.id))
        )
    assert paused_at is not None
    worker = await support.service("worker")

    async def report(kind: pb.SlaEventKind.ValueType, due: datetime) -> bool:
        response = await support.stub.RecordSlaEvent(
            pb.RecordSlaEventRequest(
                ticket_id=ticket.id,
                kind=kind,
                clock=pb.SLA_CLOCK_RESOLUTION,
                cycle=1,
                due_time=stamp(due),
            ),
            metadata=worker,
        )
        return bool(response.recorded)

    assert not await report(pb.SLA_EVENT_KIND_WARNING, paused_at + timedelta(seconds=1))
    assert not await report(pb.SLA_EVENT_KIND_BREACH, paused_at + timedelta(seconds=1))
    history = await support.history(ticket.id)
    assert not history.ticket.at_risk and not history.ticket.breached
    assert await report(pb.SLA_EVENT_KIND_WARNING, paused_at - timedelta(seconds=1))
    assert (await support.history(ticket.id)).ticket.at_risk


async def test_a_portuguese_customer_is_mailed_in_portuguese_with_the_translated_category(
    support: Support, smtp_sink: SmtpSink
) -> None:
    """The ticket records the language it was opened in (pt-BR); its receipt names the
    category in Portuguese, and the agent's answer comes in Portuguese too, status in words."""
    category = await support.category()
    await support.stub.UpdateCategory(
        pb.UpdateCategoryRequest(
            category_id=category.id,
            name=category.name,
            translations=[pb.CategoryTranslation(locale="pt-BR", name="Faturamento")],
            entries=[
                pb.FaqEntryInput(
                    question=e.question,
                    answer=e.answer,
                    translations=[
                        pb.FaqEntryTranslation(
                            locale="pt-BR",
                            question="A nota fiscal não imprime",
                            answer="Verifique a impressora padrão.",
                        )
                    ],
                )
                for e in category.entries
            ],
        ),
        metadata=support.admin,
    )
    _, account, customer = await support.customer()
    _, agent = await support.agent()
    assert account.email
    ticket = await support.open(customer, category.id, language="pt-BR", title="Nota fiscal")
    assert ticket.language == "pt-BR"
    [receipt] = await smtp_sink.wait_for(account.email, within=30)
    assert receipt.subject == f"[Guichet nº {ticket.number}] Ocorrência aberta: Nota fiscal"
    assert "categoria: Faturamento, prioridade: normal" in receipt.body
    assert "Lista de ocorrências" in receipt.body
    await support.stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=ticket.id,
            body="Qual é o código do cliente?",
            set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
        ),
        metadata=agent,
    )
    mails = await smtp_sink.wait_for(account.email, count=2, within=30)
    [answer] = [m for m in mails if m.subject != receipt.subject]
    assert answer.subject == f"[Guichet nº {ticket.number}] Re: Nota fiscal"
    assert "O suporte respondeu à sua ocorrência" in answer.body
    assert "(status: aguardando a sua resposta)" in answer.body
    # A language nobody supports is recorded as French (the mails' default).
    other = await support.open(customer, category.id, language="tlh")
    assert other.language == "fr"


async def test_translations_are_checked_like_the_texts_they_translate(support: Support) -> None:
    """A translation names its language with a tag, once per language, within the original's
    limits; a refused one names its field and saves nothing."""
    category = await support.category()
    refused = await fails(
        support.stub.UpdateCategory(
            pb.UpdateCategoryRequest(
                category_id=category.id,
                name="Facturation",
                translations=[
                    pb.CategoryTranslation(locale="pt_br", name="Faturamento"),
                    pb.CategoryTranslation(locale="en", name="Invoicing"),
                    pb.CategoryTranslation(locale="en", name="x" * 101),
                ],
                entries=[
                    pb.FaqEntryInput(
                        question="Q",
                        answer="A",
                        translations=[pb.FaqEntryTranslation(locale="pt-BR", question="P")],
                    )
                ],
            ),
            metadata=support.admin,
        )
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(refused) == {
        "translations[0].locale",
        "translations[2].locale",
        "translations[2].name",
        "entries[0].translations[0].answer",
    }
    listed = await support.stub.ListCategories(pb.ListCategoriesRequest(), metadata=support.admin)
    [unchanged] = [c for c in listed.categories if c.id == category.id]
    assert list(unchanged.translations) == []
    assert [e.question for e in unchanged.entries] == ["La facture ne s'imprime pas"]
