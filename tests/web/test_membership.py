"""Membership's walk-throughs in a browser: the workshop's banner program (seed 000: its view,
an option requested then a removal refused outside the yearly window, a technician registered
for a course, a labour-warranty claim) and the association (seed 002: a training created, a
civilian's registration validated and a re-registration refused, the duplicates review with a
merge preview, the merge and the deliberate deletion), and who may not see what."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web.conftest import sign_in, url

Shot = Callable[[Page, str], None]


def _suffix() -> str:
    """Letters only: the duplicate detection compares words, and digits would be words too."""
    return "".join(random.choices(string.ascii_lowercase, k=8))


def _open_workshop(portal: Page) -> str:
    sign_in(portal, "garage.owner")
    portal.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Mon atelier"
    ).click()
    expect(portal.get_by_role("heading", name="Mon atelier", exact=True)).to_be_visible()
    return portal.url.split("/workshops/")[1].split("/")[0].split("?")[0]


def _open_association(portal: Page, username: str = "assoc.admin") -> str:
    sign_in(portal, username)
    portal.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Association"
    ).click()
    return portal.url.split("/associations/")[1].split("/")[0].split("?")[0]


def test_workshop_view_an_option_added_and_a_removal_refused_outside_the_window(
    portal: Page, screenshot: Shot
) -> None:
    _open_workshop(portal)
    expect(portal.get_by_text("Garage du Centre").first).to_be_visible()
    expect(
        portal.get_by_role("heading", name="Programme de bannière : Atelier Plus")
    ).to_be_visible()
    expect(portal.get_by_text("Date de renouvellement", exact=True)).to_be_visible()
    expect(portal.get_by_text("Vous ne pouvez pas modifier vos coordonnées")).to_be_visible()
    expect(portal.get_by_text("elles ne s'enlèvent qu'une fois par an")).to_be_visible()
    screenshot(portal, "membership-workshop")

    portal.get_by_label("Option", exact=True).select_option(label="Publicité locale")
    portal.get_by_label("Changement", exact=True).select_option(label="Ajouter")
    portal.get_by_role("button", name="Envoyer la demande").click()
    expect(portal.get_by_role("status")).to_contain_text("Demande enregistrée")
    portal.reload()
    requests = portal.get_by_role("table", name="Demandes de changement")
    row = requests.get_by_role("row").filter(has_text="Publicité locale")
    expect(row.first).to_contain_text("En attente")
    expect(row.first).to_contain_text("Ajouter")

    portal.get_by_label("Option", exact=True).select_option(label="Dépannage 24/7")
    portal.get_by_label("Changement", exact=True).select_option(label="Enlever")
    portal.get_by_label("Commentaire (facultatif)").fill("Nous n'utilisons plus le dépannage")
    portal.get_by_role("button", name="Envoyer la demande").click()
    expect(portal.get_by_role("alert")).to_contain_text(
        "Les options ne peuvent être enlevées qu'une fois par an"
    )
    expect(portal.locator("#f-change-error")).to_contain_text("Prochaine date de renouvellement")
    expect(portal.get_by_label("Changement", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(portal.locator("#f-option_id option:checked")).to_have_text("Dépannage 24/7")
    expect(portal.get_by_label("Commentaire (facultatif)")).to_have_value(
        "Nous n'utilisons plus le dépannage"
    )
    screenshot(portal, "membership-workshop-removal-refused")
    expect(requests.get_by_role("row").filter(has_text="Enlever")).to_have_count(0)


def test_a_technician_added_and_registered_for_a_training_course(
    portal: Page, screenshot: Shot
) -> None:
    _open_workshop(portal)
    portal.get_by_role("link", name="Techniciens et formations").click()
    first, last = "Zoé", f"Testeur{_suffix()}"
    portal.get_by_label("Prénom").fill(first)
    portal.get_by_role("button", name="Ajouter un technicien").click()
    expect(portal.locator("#f-last_name-error")).to_have_text("Champ obligatoire.")
    expect(portal.get_by_label("Prénom")).to_have_value(first)

    portal.get_by_label("Nom", exact=True).fill(last)
    portal.get_by_role("button", name="Ajouter un technicien").click()
    expect(portal.get_by_role("status")).to_contain_text("Technicien ajouté")
    expect(portal.get_by_role("table", name="Techniciens")).to_contain_text(last)

    portal.get_by_label("Technicien", exact=True).select_option(label=f"{first} {last}")
    portal.get_by_label("Cours", exact=True).select_option(index=1)
    portal.get_by_role("button", name="Inscrire", exact=True).click()
    expect(portal.get_by_role("status")).to_contain_text("Technicien inscrit au cours")
    portal.reload()
    history = portal.get_by_role("table", name="Historique des formations")
    expect(history.get_by_role("row").filter(has_text=f"{first} {last}")).to_contain_text("Inscrit")
    screenshot(portal, "membership-technicians")


def test_a_warranty_claim_submitted_and_shown(portal: Page, screenshot: Shot) -> None:
    _open_workshop(portal)
    portal.get_by_role("link", name="Garanties main d'œuvre").first.click()
    expect(portal.get_by_role("table", name="Garanties main d'œuvre")).to_contain_text("GMO-")
    order = f"OR-{_suffix()}"
    portal.get_by_label("NIV du véhicule").fill("VF1TEST0012345678")
    portal.get_by_label("Bon de travail").fill(order)
    portal.get_by_label("Date de la réparation").fill("2026-11-30")
    portal.get_by_label("Montant (€)").fill("120,50")
    portal.get_by_label("Description").fill("Remplacement du thermostat sous garantie.")
    portal.get_by_role("button", name="Soumettre une garantie").click()
    expect(portal.locator("#f-labour_minutes-error")).to_have_text("Champ obligatoire.")
    expect(portal.get_by_label("Bon de travail")).to_have_value(order)
    expect(portal.get_by_label("Montant (€)")).to_have_value("120,50")
    screenshot(portal, "membership-claims")

    portal.get_by_label("Main d'œuvre (minutes)").fill("75")
    portal.get_by_role("button", name="Soumettre une garantie").click()
    expect(portal.get_by_role("status")).to_contain_text("Garantie soumise")
    expect(portal.get_by_role("heading", name="Garantie GMO-")).to_be_visible()
    expect(portal.get_by_text("120,50 €")).to_be_visible()
    expect(portal.get_by_text(order)).to_be_visible()
    screenshot(portal, "membership-claim")
    portal.get_by_role("link", name="Toutes les garanties").click()
    row = portal.get_by_role("row").filter(has_text="VF1TEST0012345678")
    expect(row.first).to_contain_text("Soumise")


def test_an_association_training_created_a_registration_validated_then_refused_again(
    portal: Page, screenshot: Shot
) -> None:
    association = _open_association(portal)
    expect(portal.get_by_role("heading", name="Adhérents et cotisations")).to_be_visible()
    expect(portal.get_by_role("table", name="Adhérents")).to_contain_text("Dupont")
    screenshot(portal, "membership-members")

    sfx = _suffix()
    kind = f"T{sfx}".upper()[:12]
    trainings: list[str] = []
    for n in ("A", "B"):
        portal.get_by_role("link", name="Formations", exact=True).click()
        portal.get_by_label("Type de formation").fill(kind)
        portal.get_by_label("Intitulé").fill(f"Secourisme {sfx} {n}")
        portal.get_by_label("Début").fill("2027-03-0%sT09:00" % ("1" if n == "A" else "8"))
        portal.get_by_label("Lieu").fill("Caserne Bonaparte, Paris")
        portal.get_by_label("Places").fill("8")
        portal.get_by_role("button", name="Créer une formation").click()
        expect(portal.get_by_role("status")).to_contain_text("Formation créée")
        expect(portal.get_by_role("heading", name=f"Secourisme {sfx} {n}")).to_be_visible()
        trainings.append(portal.url.split("/trainings/")[1].split("?")[0])
    portal.get_by_role("link", name="Formations", exact=True).click()
    expect(portal.get_by_role("table", name="Formations")).to_contain_text(f"Secourisme {sfx} A")
    screenshot(portal, "membership-trainings")
    portal.get_by_role("button", name="Se déconnecter").click()

    # A member (here DUPONT.marie) registers a civilian through the public form.
    _open_association(portal, "DUPONT.marie")
    expect(portal.get_by_text("Bienvenue dans votre espace adhérent")).to_be_visible()
    screenshot(portal, "membership-public-trainings")
    portal.get_by_role("link", name=f"S'inscrire : Secourisme {sfx} A").click()
    email = f"civil.{sfx}@example.org"

    def fill_trainee() -> None:
        portal.get_by_label("Prénom").fill("Lucie")
        portal.get_by_label("Nom", exact=True).fill(f"Civil{sfx}")
        portal.get_by_label("Date de naissance").fill("1995-02-03")
        portal.get_by_label("Adresse e-mail").fill(email)

    fill_trainee()
    screenshot(portal, "membership-register")
    portal.get_by_role("button", name="S'inscrire").click()
    expect(portal.get_by_role("status")).to_contain_text("Inscription enregistrée")
    portal.get_by_role("button", name="Se déconnecter").click()

    sign_in(portal, "assoc.admin")
    portal.goto(url(portal, f"/associations/{association}/trainings/{trainings[0]}"))
    trainees = portal.get_by_role("table", name="Liste des stagiaires")
    expect(trainees).to_contain_text(f"CIVIL{sfx.upper()} Lucie")
    portal.get_by_role("button", name=f"Valider : Lucie Civil{sfx}").click()
    expect(portal.get_by_role("status")).to_contain_text("Inscription validée")
    expect(trainees.get_by_role("row").filter(has_text="Lucie")).to_contain_text("Validée")
    screenshot(portal, "membership-trainees")
    portal.get_by_role("button", name="Se déconnecter").click()

    # The same civilian again, for a training of the same type: refused, with the reason.
    portal.goto(url(portal, f"/associations/{association}/public-trainings/{trainings[1]}"))
    fill_trainee()
    portal.get_by_role("button", name="S'inscrire").click()
    expect(portal.get_by_role("alert")).to_contain_text("déjà inscrit et validé")
    expect(portal.get_by_label("Adresse e-mail")).to_have_value(email)
    screenshot(portal, "membership-register-refused")


def test_the_duplicates_review_previews_then_merges_and_the_duplicate_disappears(
    portal: Page, screenshot: Shot
) -> None:
    association = _open_association(portal)
    sfx = _suffix()
    name = f"Mairie de Testville {sfx}"
    for company in (name, f"{name} Ouest"):
        portal.goto(url(portal, f"/associations/{association}/dps-requests"))
        portal.get_by_label("Événement", exact=True).fill(f"Marché de Noël {sfx}")
        portal.get_by_label("Date de l'événement").fill("2027-12-12")
        portal.get_by_label("Lieu").fill("Place de la mairie")
        portal.get_by_label("Public attendu").fill("800")
        portal.get_by_label("Raison sociale").fill(company)
        portal.get_by_label("Nom du contact").fill("Service des fêtes")
        portal.get_by_label("Adresse e-mail").fill(f"fetes.{sfx}@example.org")
        portal.get_by_role("button", name="Envoyer la demande").click()
        expect(portal.get_by_role("status")).to_contain_text("Demande enregistrée")
    screenshot(portal, "membership-dps")

    portal.get_by_role("link", name="Outil de fusion fiche client").first.click()
    expect(portal.get_by_text("groupes de doublons probables")).to_be_visible()
    screenshot(portal, "membership-duplicates")

    portal.get_by_role("link", name="Fiches clients").click()
    portal.get_by_label("Raison sociale").fill(name)
    portal.get_by_role("button", name="Rechercher").click()
    records = portal.get_by_role("table", name="Fiches clients")
    expect(records.get_by_role("row")).to_have_count(3)
    screenshot(portal, "membership-records")
    records.get_by_role("row").filter(has_text="Ouest").get_by_role("link").click()
    expect(portal.get_by_role("heading", name="Fiche client n°")).to_be_visible()
    candidates = portal.get_by_role("table", name="Doublons de cette fiche")
    expect(candidates.get_by_role("row").filter(has_text=name)).to_contain_text("Doublon probable")
    portal.get_by_label("Numéro client cible").select_option(index=1)
    portal.get_by_role("button", name="Aperçu de la fusion").click()
    expect(portal.get_by_role("status")).to_contain_text(
        "déplacera 0 inscription(s) et 1 demande(s) de DPS"
    )
    screenshot(portal, "membership-merge-preview")
    portal.get_by_role("button", name="Fusionner").click()
    expect(portal.get_by_role("status")).to_contain_text("Fusion faite")
    expect(portal.get_by_text("Cette fiche a été fusionnée")).to_be_visible()

    portal.get_by_label("Confirmation").fill("oui")
    portal.get_by_role("button", name="Supprimer définitivement").click()
    expect(portal.locator("#f-confirmation-error")).to_have_text("Tapez SUPPRIMER pour confirmer.")
    portal.get_by_label("Confirmation").fill("SUPPRIMER")
    portal.get_by_role("button", name="Supprimer définitivement").click()
    expect(portal.get_by_role("status")).to_contain_text("Fiche client supprimée")

    portal.get_by_label("Raison sociale").fill(name)
    portal.get_by_role("button", name="Rechercher").click()
    expect(records.get_by_role("row")).to_have_count(2)
    expect(records).not_to_contain_text("Ouest")
    expect(records).to_contain_text("0 inscription(s), 2 DPS")

    portal.get_by_role("link", name="Journal des fusions").click()
    expect(portal.get_by_role("table", name="Journal des fusions et suppressions")).to_be_visible()
    screenshot(portal, "membership-audit")


def test_a_workshop_owner_cannot_open_another_workshop_or_the_association(portal: Page) -> None:
    association = _open_association(portal)
    portal.get_by_role("button", name="Se déconnecter").click()
    _open_workshop(portal)
    for path in (f"/workshops/{association}", f"/associations/{association}"):
        portal.goto(url(portal, path))
        expect(portal.get_by_role("heading", name="Un problème est survenu")).to_be_visible()
        expect(portal.get_by_role("alert")).to_contain_text("Introuvable")
        expect(portal.locator("body")).not_to_contain_text("Atelier Plus")
        expect(portal.locator("body")).not_to_contain_text("Dupont")
    portal.goto(url(portal, "/"))
    portal.get_by_role("button", name="Se déconnecter").click()
    sign_in(portal, "DUPONT.marie")
    portal.goto(url(portal, f"/associations/{association}/records"))
    expect(portal.get_by_role("alert")).to_contain_text("Vous n'avez pas le droit")
    expect(portal.locator("body")).not_to_contain_text("Mairie")
