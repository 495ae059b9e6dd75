"""The support team's business calendars: time zone, weekly hours, the holidays observed (country,
subdivision, and the `holidays` categories: Brazil's Carnaval is the optional one) and closed days
typed by hand. Each calendar's page lists the next days its clocks will skip, so an admin sees what
the SLA deadlines will do before a ticket meets them."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import Calendar, CalendarUpdateBody
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.i18n import N_
from web.pages import form_values, redirect
from web.paging import every_item
from web.portals.support import _render
from web.problems import FormState
from web.session import Visitor

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


router: APIRouter = APIRouter()

# The API's field names → the inputs that carry them (a day's hours, the list inputs).
_FIELDS = {
    **{f"weekly_hours.{name}": f"weekly_hours.{name}" for name in WEEKDAYS},
    "weekly_hours": "weekly_hours.mon",
    "closed_days": "closed_days",
    "holiday_categories": "holiday_categories",
}


def _values(calendar: Calendar) -> dict[str, str]:
    values = {
        "time_zone": calendar["time_zone"],
        "country": calendar["country"] or "",
        "subdivision": calendar["subdivision"] or "",
        "closed_days": "\n".join(calendar["closed_days"]),
    }
    for name, hours in zip(WEEKDAYS, calendar["weekly_hours"], strict=False):
        values[f"weekly_hours.{name}"] = hours
    # No category chosen means public holidays: the form shows that box ticked, so that ticking
    # "optional" adds Carnaval to the public holidays instead of replacing them.
    for category in calendar["holiday_categories"] or ["public"]:
        values[f"category.{category}"] = "on"
    return values


def _category_label(visitor: Visitor, category: str) -> str:
    key = f"support.category.{category}"
    label = visitor.t(key)
    return label if label != key else visitor.t("support.category.other", name=category)


async def _calendar(visitor: Visitor, calendar_id: str) -> Calendar:
    calendars: list[Calendar] = await every_item(visitor.api.list_calendars)
    for calendar in calendars:
        if calendar["id"] == calendar_id:
            return calendar
    raise ApiProblem(404, {"type": "about:blank#not_found", "status": 404})


async def _page(
    visitor: Visitor,
    form: FormState,
    calendar: Calendar | None = None,
    status_code: int = 200,
) -> Response:
    # The team's handful of calendars, each editable: every one, on one page.
    listed = await every_item(visitor.api.list_calendars)
    offered: list[str] = []
    if calendar is not None and calendar["country"]:
        offered = (await visitor.api.list_holiday_categories(country=calendar["country"]))[
            "categories"
        ]
    return await _render(
        visitor,
        "support/calendars_admin.html",
        {
            "calendars": listed,
            "calendar": calendar,
            "form": form,
            "weekdays": [(name, visitor.t(f"support.weekday.{name}")) for name in WEEKDAYS],
            "categories": [(c, _category_label(visitor, c)) for c in offered],
            "agent": True,
        },
        status_code=status_code,
    )


@router.get("/support/admin/calendars", response_class=HTMLResponse)
async def calendars_admin(visitor: CurrentVisitor) -> Response:
    await visitor.me()
    return await _page(visitor, FormState(values={}))


@router.get("/support/admin/calendars/{calendar_id}", response_class=HTMLResponse)
async def calendar_admin(visitor: CurrentVisitor, calendar_id: str, done: str = "") -> Response:
    await visitor.me()
    calendar = await _calendar(visitor, calendar_id)
    form = FormState(values=_values(calendar))
    if done.isdigit():
        form.done = visitor.t("support.calendar_saved", n=int(done))
    return await _page(visitor, form, calendar)


@router.post("/support/admin/calendars/{calendar_id}", response_class=HTMLResponse)
async def update_calendar(visitor: CurrentVisitor, calendar_id: str) -> Response:
    await visitor.me()
    calendar = await _calendar(visitor, calendar_id)
    values = await form_values(visitor.request)
    body: CalendarUpdateBody = {
        "time_zone": values.get("time_zone", "").strip(),
        "weekly_hours": [values.get(f"weekly_hours.{name}", "").strip() for name in WEEKDAYS],
        "country": values.get("country", "").strip() or None,
        "subdivision": values.get("subdivision", "").strip() or None,
        "closed_days": [
            line.strip() for line in values.get("closed_days", "").splitlines() if line.strip()
        ],
        "holiday_categories": sorted(
            key.removeprefix("category.") for key in values if key.startswith("category.")
        ),
    }
    try:
        updated = await visitor.api.update_calendar(calendar_id, body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        form = FormState.refused(visitor.locale, values, problem, _FIELDS)
        return await _page(visitor, form, calendar, status_code=400)
    return redirect(f"/support/admin/calendars/{calendar_id}?done={updated['tickets_updated']}")


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("support.category.bank"),
    N_("support.category.government"),
    N_("support.category.optional"),
    N_("support.category.public"),
    N_("support.category.school"),
    N_("support.weekday.fri"),
    N_("support.weekday.mon"),
    N_("support.weekday.sat"),
    N_("support.weekday.sun"),
    N_("support.weekday.thu"),
    N_("support.weekday.tue"),
    N_("support.weekday.wed"),
)
