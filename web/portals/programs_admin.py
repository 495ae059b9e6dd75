"""The program team's page for banner programs: each option's name and benefit, and their
translations, which workshops then read in their own language (issue 25)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import OptionTranslation, OptionUpdateBody, Program, ProgramOption
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.i18n import HTML_LANG, LANGUAGE_NAMES, LOCALES
from web.pages import form_values, redirect, render
from web.paging import every_item
from web.problems import FormState
from web.session import Visitor

router: APIRouter = APIRouter()

# The languages an option may be translated into (BCP 47 tags).
LANGUAGES = tuple(HTML_LANG[locale] for locale in LOCALES)


def _values(option: ProgramOption) -> dict[str, str]:
    values = {"name": option["name"], "benefit": option["benefit"]}
    for text in option.get("translations") or ():
        values[f"translations.{text['locale']}.name"] = text["name"]
        values[f"translations.{text['locale']}.benefit"] = text["benefit"]
    return values


def _translations(values: dict[str, str]) -> list[OptionTranslation]:
    """The languages the form filled in (a language left blank has no translation)."""
    found: list[OptionTranslation] = []
    for tag in LANGUAGES:
        name = values.get(f"translations.{tag}.name", "").strip()
        benefit = values.get(f"translations.{tag}.benefit", "").strip()
        if name or benefit:
            found.append({"locale": tag, "name": name, "benefit": benefit})
    return found


async def _find(visitor: Visitor, program_id: str, option_id: str) -> tuple[Program, ProgramOption]:
    for program in await every_item(visitor.api.list_programs):
        if program["id"] == program_id:
            for option in program["options"]:
                if option["id"] == option_id:
                    return program, option
    raise ApiProblem(404, {"type": "about:blank#not_found", "status": 404})


async def _page(
    visitor: Visitor,
    form: FormState | None = None,
    editing: tuple[Program, ProgramOption] | None = None,
    status_code: int = 200,
) -> Response:
    # The programs are the catalogue an operator edits: every one, on one page.
    programs = await every_item(visitor.api.list_programs)
    return await render(
        visitor,
        "operator/programs.html",
        {
            "programs": programs,
            "program": editing[0] if editing else None,
            "option": editing[1] if editing else None,
            "form": form or FormState(),
            "languages": [(HTML_LANG[locale], LANGUAGE_NAMES[locale]) for locale in LOCALES],
        },
        status_code=status_code,
    )


@router.get("/operator/programs", response_class=HTMLResponse)
async def programs_page(visitor: CurrentVisitor) -> Response:
    await visitor.me()
    return await _page(visitor)


@router.get("/operator/programs/{program_id}/options/{option_id}", response_class=HTMLResponse)
async def option_page(visitor: CurrentVisitor, program_id: str, option_id: str) -> Response:
    await visitor.me()
    editing = await _find(visitor, program_id, option_id)
    form = FormState(values=_values(editing[1]))
    return await _page(visitor, form, editing)


@router.post("/operator/programs/{program_id}/options/{option_id}", response_class=HTMLResponse)
async def save_option(visitor: CurrentVisitor, program_id: str, option_id: str) -> Response:
    await visitor.me()
    editing = await _find(visitor, program_id, option_id)
    values = await form_values(visitor.request)
    translations = _translations(values)
    body: OptionUpdateBody = {
        "name": values.get("name", "").strip(),
        "benefit": values.get("benefit", "").strip(),
        "translations": translations,
    }
    try:
        await visitor.api.update_option(program_id, option_id, body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        # translations[i] in the API is the i-th language the form filled in
        fields = {
            f"translations[{i}]": f"translations.{text['locale']}"
            for i, text in enumerate(translations)
        }
        form = FormState.refused(visitor.locale, values, problem, {})
        form.errors = {_renamed(name, fields): message for name, message in form.errors.items()}
        return await _page(visitor, form, editing, status_code=400)
    flash(visitor.request, "programs.saved")
    return redirect(f"/operator/programs/{program_id}/options/{option_id}")


def _renamed(name: str, fields: dict[str, str]) -> str:
    for api_path, input_path in fields.items():
        if name.startswith(api_path + "."):
            return input_path + name.removeprefix(api_path)
    return name
