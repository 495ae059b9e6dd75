"""The Jinja environment: templates and every filter they use, built by the app factory (never at
import), so that the filters a template needs are listed in one place."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from web.pages import local_time, missing_label
from web.portals.membership_common import show_date, show_money
from web.portals.partners_common import money


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
    templates.env.filters.update(
        {
            "local_time": local_time,
            "missing_label": missing_label,
            "membership_date": show_date,
            "membership_money": show_money,
            "partners_money": money,
        }
    )
    return templates
