"""Typed inputs (a number of minutes, an amount in euros) read without stopping the form early.

A page that refused "1h30" itself would answer before the gateway had checked the other fields:
the person would fix that one and meet the next refusal on the next submit. So a text that is
not the number expected goes to the gateway as typed; the gateway refuses it (pydantic's
`int_parsing`) together with every other problem of the form, in one answer, and the page then
says what was expected of that input in its own words ("a number of minutes, e.g. 90").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from web.i18n import register
from web.problems import FormState


@dataclass
class TypedInputs:
    """The typed inputs of one form: what each became, and which were not what they should be."""

    # input name → the message key that says what it expects ("support.minutes_expected")
    expects: dict[str, str] = field(default_factory=dict)
    wrong: set[str] = field(default_factory=set)

    def number(self, values: Mapping[str, str], name: str, expects: str) -> Any:
        """A whole number typed in `name`: an int, None when blank, else the text as typed (the
        gateway refuses it with the form's other problems)."""
        self.expects[name] = expects
        text = values.get(name, "").strip().replace(" ", "").replace("\u202f", "")
        if not text:
            return None
        if text.lstrip("-").isdigit():
            return int(text)
        self.wrong.add(name)
        return text

    def cents(self, values: Mapping[str, str], name: str, expects: str) -> Any:
        """An amount typed in euros ("135,50", "1 250") as cents; None when blank; else the text."""
        self.expects[name] = expects
        text = values.get(name, "").strip().replace(" ", "").replace("\u202f", "")
        text = text.removesuffix("€").removeprefix("€").replace(",", ".")
        if not text:
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = None
        if amount is not None and amount.is_finite() and amount == round(amount, 2):
            return int(amount * 100)
        self.wrong.add(name)
        return values.get(name, "").strip()

    def explain(self, form: FormState, translate: Any) -> FormState:
        """After the gateway's refusal: each input that was not what it should be says what
        was expected (whatever field name the gateway gave it, the page maps it first)."""
        for name in self.wrong:
            form.errors[name] = translate(self.expects[name])
        return form


MESSAGES = {
    "form.expects_minutes": (
        "Un nombre de minutes est attendu, par exemple 90 pour 1 h 30.",
        "A number of minutes is expected, for example 90 for 1 h 30.",
    ),
    "form.expects_amount": (
        "Un montant en euros est attendu, par exemple 135,50.",
        "An amount in euros is expected, for example 135.50.",
    ),
    "form.expects_whole": (
        "Un nombre entier est attendu, par exemple 12.",
        "A whole number is expected, for example 12.",
    ),
    "form.expects_year": (
        "Une année est attendue, par exemple 2026.",
        "A year is expected, for example 2026.",
    ),
    "form.expects_percent": (
        "Un pourcentage entier est attendu, par exemple 15.",
        "A whole percentage is expected, for example 15.",
    ),
    "form.expects_client_number": (
        "Un numéro de client est attendu : des chiffres, par exemple 100123.",
        "A client number is expected: digits, for example 100123.",
    ),
}
register(MESSAGES)
