"""Typed inputs (a number of minutes, an amount) read without stopping the form early.

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

from web.i18n import N_
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
        """An amount typed as people write it ("135,50", "135.50", "1 250") as cents; None when
        blank; else the text as typed."""
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


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("form.expects_amount"),
    N_("form.expects_client_number"),
    N_("form.expects_minutes"),
    N_("form.expects_percent"),
    N_("form.expects_whole"),
    N_("form.expects_year"),
)
