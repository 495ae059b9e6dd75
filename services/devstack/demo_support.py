"""Support's demo data for `make dev`, loaded over gRPC like everything else (idempotent).

Calendars (Paris office hours with French holidays; the partners' desk in Casablanca), plans,
contracts for "Menuiserie Bois & Cie" (ERP-BOIS) and "Pizzeria Napoli" (DP-NAPOLI), categories
with their questions and answers (from the seeds), and a few tickets in various states, opened by
bois.user and napoli.manager and answered by the operator admin (who is a support agent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.support.v1 import support_pb2 as pb, support_pb2_grpc

Metadata = tuple[tuple[str, str], ...]
OFFICE = "09:00-12:00,13:00-18:00"


@dataclass(frozen=True)
class DemoCategory:
    code: str
    name: str
    audience: pb.CategoryAudience.ValueType
    entries: tuple[tuple[str, str], ...]
    # {language tag: (name, ((question, answer), …) in the entries' order)}
    translations: Mapping[str, tuple[str, tuple[tuple[str, str], ...]]] = field(
        default_factory=dict
    )

    def entry_inputs(self) -> list[pb.FaqEntryInput]:
        return [
            pb.FaqEntryInput(
                question=question,
                answer=answer,
                translations=[
                    pb.FaqEntryTranslation(
                        locale=tag, question=texts[1][index][0], answer=texts[1][index][1]
                    )
                    for tag, texts in self.translations.items()
                ],
            )
            for index, (question, answer) in enumerate(self.entries)
        ]

    def name_translations(self) -> list[pb.CategoryTranslation]:
        return [
            pb.CategoryTranslation(locale=tag, name=texts[0])
            for tag, texts in self.translations.items()
        ]


CATEGORIES: tuple[DemoCategory, ...] = (
    DemoCategory(
        "ERP-INVOICING",
        "Facturation et notes fiscales",
        pb.CATEGORY_AUDIENCE_CUSTOMER,
        (
            (
                "La note fiscale ne s'imprime pas quand je clique sur « Facturer ».",
                "Vérifiez l'imprimante par défaut du poste (Paramètres > Impression), puis "
                "réimprimez depuis Ventes > Factures > Réimprimer.",
            ),
            (
                "Comment est calculé l'ICMS pour un consommateur final ?",
                "Le taux de l'État de destination s'applique, plus le DIFAL : voir la fiche "
                "fiscale du produit, onglet ICMS.",
            ),
        ),
        {
            "pt-BR": (
                "Faturamento e notas fiscais",
                (
                    (
                        "Não imprimiu a NF quando cliquei em Faturar!",
                        "Verifique a impressora padrão da estação (Configurações > Impressão) e "
                        "reimprima em Vendas > Notas fiscais > Reimprimir.",
                    ),
                    (
                        "Como é calculado o ICMS para consumidor final?",
                        "Aplica-se a alíquota do estado de destino, mais o DIFAL: veja a ficha "
                        "fiscal do produto, aba ICMS.",
                    ),
                ),
            ),
            "en": (
                "Invoicing and tax invoices",
                (
                    (
                        "The tax invoice does not print when I click “Invoice”.",
                        "Check the workstation's default printer (Settings > Printing), then "
                        "print again from Sales > Invoices > Reprint.",
                    ),
                    (
                        "How is ICMS computed for an end consumer?",
                        "The destination state's rate applies, plus DIFAL: see the product's "
                        "tax sheet, ICMS tab.",
                    ),
                ),
            ),
        },
    ),
    DemoCategory(
        "ERP-CUSTOMERS",
        "Clients et contacts",
        pb.CATEGORY_AUDIENCE_CUSTOMER,
        (
            (
                "L'e-mail d'un contact n'est pas enregistré (écran ATW0001).",
                "L'adresse doit être unique par client : cherchez un doublon dans Contacts.",
            ),
        ),
        {
            "pt-BR": (
                "Clientes e contatos",
                (
                    (
                        "O e-mail de um contato não foi gravado (tela ATW0001).",
                        "O endereço deve ser único por cliente: procure um registro duplicado "
                        "em Contatos.",
                    ),
                ),
            ),
            "en": (
                "Customers and contacts",
                (
                    (
                        "A contact's e-mail is not saved (screen ATW0001).",
                        "The address must be unique per customer: look for a duplicate in "
                        "Contacts.",
                    ),
                ),
            ),
        },
    ),
    DemoCategory(
        "ERP-FINANCE",
        "Finance et trésorerie",
        pb.CATEGORY_AUDIENCE_CUSTOMER,
        (
            (
                "Mon flux de trésorerie ne correspond pas à mon compte courant.",
                "C'est une analyse de votre situation : ouvrez un ticket « consulting » "
                "(facturé au temps passé).",
            ),
        ),
        {
            "pt-BR": (
                "Financeiro e tesouraria",
                (
                    (
                        "Meu fluxo de caixa não “bate” com minha conta corrente, por quê?",
                        "É uma análise da sua situação: abra uma ocorrência de consultoria "
                        "(cobrada pelo tempo gasto).",
                    ),
                ),
            ),
            "en": (
                "Finance and treasury",
                (
                    (
                        "My cash flow does not match my current account.",
                        "That is an analysis of your situation: open a consulting ticket "
                        "(billed by the time spent).",
                    ),
                ),
            ),
        },
    ),
    DemoCategory(
        "PARTNER-CONTENT",
        "Modifications du contenu",
        pb.CATEGORY_AUDIENCE_PARTNER,
        (
            (
                "Je veux ajouter ou modifier le nom ou la description d'un produit.",
                "Envoyez-nous un message ici. Les prix se modifient directement dans "
                "l'interface partenaire.",
            ),
        ),
    ),
    DemoCategory(
        "PARTNER-BANK",
        "Coordonnées bancaires",
        pb.CATEGORY_AUDIENCE_PARTNER,
        (
            (
                "Je veux changer mes coordonnées bancaires.",
                "Envoyez-nous un message : nous vous demanderons un justificatif émis par "
                "votre banque.",
            ),
        ),
    ),
    DemoCategory(
        "PARTNER-INVOICES",
        "Factures et commandes",
        pb.CATEGORY_AUDIENCE_PARTNER,
        (
            (
                "Une commande a été annulée : pourquoi, et y a-t-il eu un paiement ?",
                "Rapports > Historique : sélectionnez la commande marquée d'une croix.",
            ),
            (
                "Il manque un paiement.",
                "Envoyez-nous un message en précisant la période et le mois du paiement.",
            ),
        ),
    ),
    DemoCategory(
        "PARTNER-OTHER",
        "Autre",
        pb.CATEGORY_AUDIENCE_PARTNER,
        (("Problème avec une promotion active.", "Envoyez-nous un message et expliquez-le."),),
    ),
)


def _targets(scale: int) -> list[pb.SlaTarget]:
    """Targets per priority (business minutes), tighter as the priority rises."""
    rows = (
        (pb.TICKET_PRIORITY_LOW, 16, 24, 80),
        (pb.TICKET_PRIORITY_NORMAL, 8, 16, 40),
        (pb.TICKET_PRIORITY_HIGH, 4, 8, 16),
        (pb.TICKET_PRIORITY_URGENT, 1, 2, 8),
    )
    return [
        pb.SlaTarget(
            priority=priority,
            first_response_minutes=first * 60 // scale,
            next_response_minutes=following * 60 // scale,
            resolution_minutes=resolution * 60 // scale,
        )
        for priority, first, following, resolution in rows
    ]


async def _token(identity: identity_pb2_grpc.IdentityServiceStub, user: str, pw: str) -> Metadata:
    login = await identity.Login(identity_pb2.LoginRequest(username=user, password=pw), timeout=10)
    return (("authorization", f"Bearer {login.tokens.access_token}"),)


async def load_support_demo(
    support_addr: str,
    identity: identity_pb2_grpc.IdentityServiceStub,
    admin: Metadata,
    organisations: Mapping[str, str],
    demo_password: str,
) -> None:
    """`organisations` maps demo organisation codes (ERP-BOIS, DP-NAPOLI) to their ids."""
    async with grpc.aio.insecure_channel(support_addr) as channel:
        stub = support_pb2_grpc.SupportServiceStub(channel)
        calendars = {
            c.name: c.id
            for c in (
                await stub.ListCalendars(
                    pb.ListCalendarsRequest(page=common_pb2.PageRequest(page_size=500)),
                    metadata=admin,
                    timeout=10,
                )
            ).calendars
        }
        for name, zone, weekly, country in (
            ("Bureau de Paris", "Europe/Paris", [OFFICE] * 5 + ["", ""], "FR"),
            ("Assistance partenaires", "Africa/Casablanca", ["08:00-23:00"] * 7, "MA"),
        ):
            if name not in calendars:
                created = await stub.CreateCalendar(
                    pb.CreateCalendarRequest(
                        name=name, time_zone=zone, weekly_hours=weekly, country=country
                    ),
                    metadata=admin,
                    timeout=10,
                )
                calendars[name] = created.calendar.id
        plans = {
            p.code: p.id
            for p in (
                await stub.ListPlans(
                    pb.ListPlansRequest(page=common_pb2.PageRequest(page_size=500)),
                    metadata=admin,
                    timeout=10,
                )
            ).plans
        }
        for code, name, calendar, scale in (
            ("ERP-STANDARD", "ERP Standard", "Bureau de Paris", 1),
            ("ERP-PREMIUM", "ERP Premium", "Bureau de Paris", 2),
            ("PARTNER", "Partenaires livraison", "Assistance partenaires", 2),
        ):
            if code not in plans:
                created_plan = await stub.CreatePlan(
                    pb.CreatePlanRequest(
                        code=code,
                        name=name,
                        calendar_id=calendars[calendar],
                        targets=_targets(scale),
                    ),
                    metadata=admin,
                    timeout=10,
                )
                plans[code] = created_plan.plan.id
        await stub.SetContract(
            pb.SetContractRequest(
                organisation_id=organisations["ERP-BOIS"], plan_id=plans["ERP-STANDARD"]
            ),
            metadata=admin,
            timeout=10,
        )
        await stub.SetContract(
            pb.SetContractRequest(
                organisation_id=organisations["ERP-SOUZA"], plan_id=plans["ERP-STANDARD"]
            ),
            metadata=admin,
            timeout=10,
        )
        await stub.SetContract(
            pb.SetContractRequest(
                organisation_id=organisations["DP-NAPOLI"],
                plan_id=plans["PARTNER"],
                operations_email="operations@napoli.demo.guichet.example.com",
            ),
            metadata=admin,
            timeout=10,
        )
        listed = (
            await stub.ListCategories(pb.ListCategoriesRequest(), metadata=admin, timeout=10)
        ).categories
        existing = {c.code: c.id for c in listed}
        translated = {c.code for c in listed if c.translations}
        for position, category in enumerate(CATEGORIES):
            if category.code in existing:
                if category.translations and category.code not in translated:
                    # Demo data of an older version: its translations are added once.
                    await stub.UpdateCategory(
                        pb.UpdateCategoryRequest(
                            category_id=existing[category.code],
                            name=category.name,
                            position=position,
                            entries=category.entry_inputs(),
                            translations=category.name_translations(),
                        ),
                        metadata=admin,
                        timeout=10,
                    )
                continue
            made = await stub.CreateCategory(
                pb.CreateCategoryRequest(
                    code=category.code,
                    name=category.name,
                    audience=category.audience,
                    position=position,
                    entries=category.entry_inputs(),
                    translations=category.name_translations(),
                ),
                metadata=admin,
                timeout=10,
            )
            existing[category.code] = made.category.id
        await _demo_tickets(stub, identity, admin, existing, demo_password)


async def _demo_tickets(
    stub: support_pb2_grpc.SupportServiceStub,
    identity: identity_pb2_grpc.IdentityServiceStub,
    admin: Metadata,
    categories: Mapping[str, str],
    demo_password: str,
) -> None:
    """A handful of tickets, once: open, waiting on the customer, finished; a partner message."""
    customer = await _token(identity, "bois.user", demo_password)
    if (await stub.ListTickets(pb.ListTicketsRequest(), metadata=customer, timeout=10)).tickets:
        return
    view = await stub.ViewCategory(
        pb.ViewCategoryRequest(category_id=categories["ERP-CUSTOMERS"]),
        metadata=customer,
        timeout=10,
    )
    waiting = await stub.OpenTicket(
        pb.OpenTicketRequest(
            category_id=categories["ERP-CUSTOMERS"],
            title="E-mail du contact non enregistré",
            description=(
                "J'ai créé le client code 100 via l'écran ATW0001 (Accueil client), mais "
                "l'e-mail du contact Bruno n'a pas été enregistré. Merci de vérifier."
            ),
            screen_code="ATW0001",
            example_record="client 100, contact Bruno",
            view_id=view.view_id,
        ),
        metadata=customer,
        timeout=10,
    )
    await stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=waiting.ticket.id,
            body="Pouvez-vous nous envoyer une capture de l'écran au moment de l'enregistrement ?",
            set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
        ),
        metadata=admin,
        timeout=10,
    )
    finished = await stub.OpenTicket(
        pb.OpenTicketRequest(
            category_id=categories["ERP-INVOICING"],
            title="La note fiscale ne s'imprime pas",
            description="Rien ne sort à l'impression quand je clique sur Facturer.",
            screen_code="FAT0100",
            example_record="commande 4521",
            priority=pb.TICKET_PRIORITY_HIGH,
        ),
        metadata=customer,
        timeout=10,
    )
    await stub.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=finished.ticket.id,
            body="L'imprimante par défaut du poste avait changé ; c'est corrigé.",
            set_status=pb.TICKET_STATUS_FINISHED,
        ),
        metadata=admin,
        timeout=10,
    )
    consulting = await stub.OpenTicket(
        pb.OpenTicketRequest(
            category_id=categories["ERP-FINANCE"],
            title="Flux de trésorerie différent du compte courant",
            description="Le solde prévu ne correspond pas au relevé bancaire de mars.",
            screen_code="FIN0200",
            example_record="mars, compte 512",
            kind=pb.TICKET_KIND_CONSULTING,
        ),
        metadata=customer,
        timeout=10,
    )
    await stub.LogConsultingTime(
        pb.LogConsultingTimeRequest(
            ticket_id=consulting.ticket.id, minutes=45, note="Analyse des écritures de mars"
        ),
        metadata=admin,
        timeout=10,
    )
    partner = await _token(identity, "napoli.manager", demo_password)
    await stub.SendPartnerMessage(
        pb.SendPartnerMessageRequest(
            category_id=categories["PARTNER-INVOICES"],
            subject="Paiement manquant",
            body="Le paiement de la période du 1er au 15 mars n'apparaît pas.",
        ),
        metadata=partner,
        timeout=10,
    )
