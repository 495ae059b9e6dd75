"""The gettext catalogs (Babel): extract, update, check, compile, and absorb tuple-style messages.

Two catalogs today, each a `.pot` template plus one `.po` per locale, committed; the `.mo` files
are compiled at install (`make install`) and never committed:

- `web`: the portal's pages. Message ids are stable keys (`account.sign_in`), not source
  sentences (docs/decisions.md, "Portal messages: keys as gettext message ids").
- `support-mail`: the support service's mails to customers (ticket opened, answered).

    python -m services.kit.catalogs extract   # templates + code → .pot, then every .po updated
    python -m services.kit.catalogs check     # fails when stale or when a locale lacks a text
    python -m services.kit.catalogs compile   # .po → .mo (make install)
    python -m services.kit.catalogs absorb    # `MESSAGES = {key: (fr, en)}` → the catalogs

`check` runs in `make test` (like the generated-code check): the template must match what the
extraction finds today, and every locale must have a non-empty, non-fuzzy text for every id,
with the same `{placeholders}` as English.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ("fr", "en", "pt_BR")
# The locale whose texts define each message's placeholders and are shown to translators.
REFERENCE = "en"
# Fixed header dates: the files change only when a message does (no churn, calm merges).
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)[^{}]*\}")


@dataclass(frozen=True)
class Spec:
    """One catalog: where its sources are, how they mark messages, where its files live."""

    name: str
    source: Path
    locale_dir: Path
    domain: str
    keywords: dict[str, tuple[int, ...] | None] = field(default_factory=dict)

    @property
    def template(self) -> Path:
        return self.locale_dir / f"{self.domain}.pot"

    def po(self, locale: str) -> Path:
        return self.locale_dir / locale / "LC_MESSAGES" / f"{self.domain}.po"

    def mo(self, locale: str) -> Path:
        return self.po(locale).with_suffix(".mo")


SPECS = (
    Spec(
        "web",
        ROOT / "web",
        ROOT / "web" / "locale",
        "messages",
        # t("key", …) in templates and code (visitor.t too), translate(locale, "key", …),
        # flash(request, "key", …) (a confirmation said on the next page, web/flash.py), and
        # N_("key") for keys a page builds at run time (t("role." ~ role)).
        {"t": None, "translate": (2,), "flash": (2,), "N_": None},
    ),
    Spec(
        "support-mail",
        ROOT / "services" / "support",
        ROOT / "services" / "support" / "locale",
        "mail",
        {"mail_text": (2,), "N_": None},
    ),
)


def _spec(name: str) -> Spec:
    for spec in SPECS:
        if spec.name == name:
            return spec
    raise SystemExit(f"no catalog named {name!r}: {[s.name for s in SPECS]}")


# -- extraction ---------------------------------------------------------------------------


def extracted(spec: Spec) -> dict[str, list[str]]:
    """Every message id the sources use, with the files that use it."""
    config = spec.source / "babel.cfg"
    with config.open() as fileobj:
        method_map, options_map = parse_mapping_cfg(fileobj, str(config))  # type: ignore[no-untyped-call]
    found: dict[str, list[str]] = {}
    # t(f"role.{r}") is a key built at run time, declared elsewhere with N_(): Babel's warning
    # about each such f-string (written straight to stderr) is noise here.
    with contextlib.redirect_stderr(io.StringIO()):
        for filename, _line, message, _comments, _context in extract_from_dir(
            spec.source, method_map, options_map, keywords=spec.keywords, comment_tags=()
        ):
            key = message[0] if isinstance(message, tuple) else message
            if key:
                found.setdefault(key, []).append(filename)
    return found


def _template(spec: Spec, ids: Iterable[str]) -> Catalog:
    catalog = _new_catalog(spec, None)
    for key in sorted(ids):
        catalog.add(key, "")
    return catalog


def _new_catalog(spec: Spec, locale: str | None) -> Catalog:
    return Catalog(
        locale=locale,
        domain=spec.domain,
        project="Guichet",
        version="1",
        header_comment=(
            f"# Guichet: the {spec.name} catalog"
            + (f" ({locale})" if locale else ", template")
            + ".\n# Generated ids by `python -m services.kit.catalogs extract`; texts by hand."
        ),
        creation_date=_EPOCH,
        revision_date=_EPOCH,
        fuzzy=False,
    )


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fileobj:
        return read_po(fileobj, locale=locale, abort_invalid=True)


def _write(path: Path, catalog: Catalog) -> None:
    catalog.creation_date = _EPOCH
    catalog.revision_date = _EPOCH
    catalog.fuzzy = False
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, no_location=True, sort_output=True, ignore_obsolete=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != buffer.getvalue():
        path.write_bytes(buffer.getvalue())


def _texts(spec: Spec, locale: str) -> dict[str, str]:
    path = spec.po(locale)
    if not path.exists():
        return {}
    return {str(m.id): str(m.string or "") for m in _read(path, locale) if m.id}


def update(
    spec: Spec, ids: Iterable[str], changes: dict[str, dict[str, str]] | None = None
) -> None:
    """Writes the template and every locale's catalog for exactly `ids`, keeping their texts.

    `changes` (absorbed from tuple-style messages) sets texts: {locale: {id: text}}. When the
    reference or French text of an id changes, the other locales' texts become fuzzy (to review).
    """
    ids = sorted(set(ids))
    changes = changes or {}
    _write(spec.template, _template(spec, ids))
    old = {locale: _catalog_or_empty(spec, locale) for locale in LOCALES}
    changed_sources = {
        key
        for locale in ("fr", REFERENCE)
        for key, text in changes.get(locale, {}).items()
        if key in old[locale] and str(old[locale][key].string or "") not in ("", text)
    }
    reference = {**_strings(old[REFERENCE]), **changes.get(REFERENCE, {})}
    for locale in LOCALES:
        catalog = _new_catalog(spec, locale)
        given = changes.get(locale, {})
        for key in ids:
            previous = old[locale].get(key)
            text = given.get(key, str(previous.string or "") if previous else "")
            flags = set(previous.flags) if previous else set()
            if key in changed_sources and key not in given:
                flags.add("fuzzy")
            if key in given:
                flags.discard("fuzzy")
            comments = [] if locale == REFERENCE or not reference.get(key) else [reference[key]]
            catalog.add(key, text, flags=flags - {"python-format"}, auto_comments=comments)
        _write(spec.po(locale), catalog)


def _catalog_or_empty(spec: Spec, locale: str) -> Catalog:
    path = spec.po(locale)
    return _read(path, locale) if path.exists() else _new_catalog(spec, locale)


def _strings(catalog: Catalog) -> dict[str, str]:
    return {str(m.id): str(m.string or "") for m in catalog if m.id}


# -- checks -------------------------------------------------------------------------------


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def problems(spec: Spec) -> list[str]:
    """What is wrong with a catalog, in sentences; empty when it is current and complete."""
    found = extracted(spec)
    wrong: list[str] = []
    for path, names in tuple_messages(spec):
        wrong.append(
            f"{path.relative_to(ROOT)}: tuple-style messages {', '.join(names)}: run "
            "`python -m services.kit.catalogs absorb`, then write the missing locales' texts"
        )
    if not spec.template.exists():
        return [*wrong, f"{spec.template.relative_to(ROOT)} is missing: run extract"]
    template = {str(m.id) for m in _read(spec.template) if m.id}
    if template != set(found):
        new, gone = sorted(set(found) - template), sorted(template - set(found))
        wrong.append(
            f"{spec.template.relative_to(ROOT)} is stale (new: {new[:8]}, gone: {gone[:8]}): "
            "run `python -m services.kit.catalogs extract`"
        )
    reference = _texts(spec, REFERENCE)
    for locale in LOCALES:
        path = spec.po(locale)
        if not path.exists():
            wrong.append(f"{path.relative_to(ROOT)} is missing: run extract")
            continue
        catalog = _read(path, locale)
        have = {str(m.id): m for m in catalog if m.id}
        missing = sorted(k for k in found if k not in have or not have[k].string)
        fuzzy = sorted(k for k, m in have.items() if "fuzzy" in m.flags)
        extra = sorted(set(have) - set(found))
        mismatched = sorted(
            k
            for k, m in have.items()
            if m.string and placeholders(str(m.string)) != placeholders(reference.get(k, ""))
        )
        rel = path.relative_to(ROOT)
        if missing:
            wrong.append(f"{rel}: {len(missing)} messages without a text: {missing[:10]}")
        if fuzzy:
            wrong.append(f"{rel}: {len(fuzzy)} texts to review (fuzzy): {fuzzy[:10]}")
        if extra:
            wrong.append(f"{rel}: {len(extra)} ids no source uses: {extra[:10]} (run extract)")
        if mismatched:
            wrong.append(f"{rel}: placeholders differ from {REFERENCE}'s in {mismatched[:10]}")
    return wrong


# -- compiling ----------------------------------------------------------------------------


def compile_catalogs(spec: Spec, *, force: bool = False) -> list[Path]:
    """Every locale's `.po` → `.mo` when the `.mo` is missing or older; returns those written."""
    written = []
    for locale in LOCALES:
        po, mo = spec.po(locale), spec.mo(locale)
        if not po.exists():
            continue
        if force or not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            buffer = io.BytesIO()
            write_mo(buffer, _read(po, locale))
            mo.write_bytes(buffer.getvalue())
            written.append(mo)
    return written


# -- absorbing tuple-style messages -------------------------------------------------------


def _is_messages(target: ast.expr) -> bool:
    return isinstance(target, ast.Name) and target.id.endswith("MESSAGES")


def _assignments(tree: ast.Module) -> Iterator[tuple[ast.stmt, str, ast.Dict]]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if _is_messages(target) and isinstance(value, ast.Dict):
            assert isinstance(target, ast.Name)
            yield node, target.id, value


def tuple_messages(spec: Spec) -> list[tuple[Path, list[str]]]:
    """The modules that still declare `MESSAGES = {key: (french, english)}` dicts."""
    found = []
    for path in sorted(spec.source.rglob("*.py")):
        text = path.read_text()
        if "MESSAGES" not in text:
            continue
        names = [name for _, name, _ in _assignments(ast.parse(text))]
        if names:
            found.append((path, names))
    return found


def absorb(spec: Spec) -> list[str]:
    """Moves every tuple-style dict into the catalogs and out of its module.

    French and English texts go to fr and en (a changed one makes the other locales' texts
    fuzzy); each locale beyond them gets the id with no text, which `check` reports until
    someone writes it. In the module, the dict and its `register(...)` call are removed; the keys
    no `t("…")` names literally (built at run time) stay declared as `N_("…")` markers. Nothing
    is written unless every module could be rewritten. Returns what it did, in sentences.
    """
    changes: dict[str, dict[str, str]] = {"fr": {}, "en": {}}
    report: list[str] = []
    modules = tuple_messages(spec)
    if not modules:
        return ["no tuple-style messages left"]
    rewritten: dict[Path, tuple[str, list[str], list[str]]] = {}
    for path, _names in modules:
        source = path.read_text()
        keys: list[str] = []
        nodes: list[tuple[ast.stmt, str]] = []
        for node, name, value in _assignments(ast.parse(source)):
            for key_node, pair_node in zip(value.keys, value.values, strict=True):
                if key_node is None:  # **OTHER_MESSAGES: absorbed where it is declared
                    continue
                key = ast.literal_eval(key_node)
                french, english = ast.literal_eval(pair_node)
                changes["fr"][key], changes["en"][key] = french, english
                keys.append(key)
            nodes.append((node, name))
        text, still = _without_dicts(source, nodes)
        rewritten[path] = (text, keys, still)
    # Which keys do the sources name literally once the dicts are gone?
    originals = {path: path.read_text() for path in rewritten}
    try:
        for path, (text, _, _) in rewritten.items():
            path.write_text(text)
        literal = set(extracted(spec))
        final: dict[Path, str] = {}
        for path, (text, keys, still) in rewritten.items():
            runtime = [key for key in keys if key not in literal]
            final[path] = _with_markers(path, text, runtime) if runtime else text
            report.append(
                f"{path.relative_to(ROOT)}: {len(keys)} messages moved"
                + (f", {len(runtime)} kept as N_() markers (built at run time)" if runtime else "")
                + (f"; still referenced, fix by hand: {still}" if still else "")
            )
        for path, text in final.items():
            path.write_text(text)
        update(spec, set(extracted(spec)), changes)
    except BaseException:
        for path, text in originals.items():
            path.write_text(text)
        raise
    report.append(
        "now run `ruff check --fix` and `ruff format` on those modules, write the texts that "
        "`check` lists as missing or fuzzy (e.g. pt_BR), then run check"
    )
    return report


def _without_dicts(source: str, nodes: list[tuple[ast.stmt, str]]) -> tuple[str, list[str]]:
    """The module without the dict statements and their `register(NAME)` calls, and the names
    of those dicts that it still uses (to fix by hand)."""
    lines = source.splitlines(keepends=True)
    names = {name for _, name in nodes}
    drop: set[int] = set()
    statements: list[ast.stmt] = [node for node, _ in nodes]
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "register"
            and all(isinstance(a, ast.Name) and a.id in names for a in node.value.args)
        ):
            statements.append(node)
    for node in statements:
        assert node.end_lineno is not None
        drop.update(range(node.lineno - 1, node.end_lineno))
    kept = "".join(line for index, line in enumerate(lines) if index not in drop)
    still = ast.parse(kept)
    return kept, sorted(
        {n.id for n in ast.walk(still) if isinstance(n, ast.Name) and n.id in names}
    )


def _with_markers(path: Path, text: str, keys: list[str]) -> str:
    """Declares run-time keys in the module's `RUNTIME_MESSAGES` (made at its end if needed),
    importing N_ from web.i18n."""
    tree = ast.parse(text)
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "RUNTIME_MESSAGES"
            and isinstance(node.value, ast.Tuple)
        ):
            known = [
                str(call.args[0].value)
                for call in node.value.elts
                if isinstance(call, ast.Call) and isinstance(call.args[0], ast.Constant)
            ]
            lines = text.splitlines(keepends=True)
            assert node.end_lineno is not None
            text = "".join(lines[: node.lineno - 1] + lines[node.end_lineno :])
            keys = [*known, *keys]
            break
    body = "".join(f'    N_("{key}"),\n' for key in sorted(set(keys)))
    text = text.rstrip("\n") + (
        "\n\n\n# Message ids this module builds at run time, declared for the extraction.\n"
        f"RUNTIME_MESSAGES = (\n{body})\n"
    )
    imports_n = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "web.i18n"
        and any(alias.name == "N_" for alias in node.names)
        for node in tree.body
    )
    if not imports_n:
        last = None  # the last import of the module's opening block
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                last = node
            elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
                break
        if last is None or last.end_lineno is None:
            raise SystemExit(f"{path}: no imports to put `from web.i18n import N_` beside")
        lines = text.splitlines(keepends=True)
        lines.insert(last.end_lineno, "from web.i18n import N_\n")
        text = "".join(lines)
    return text


# -- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("extract", "check", "compile", "absorb"))
    parser.add_argument("catalogs", nargs="*", help="catalog names (default: all)")
    parser.add_argument("--force", action="store_true", help="compile even when fresh")
    options = parser.parse_args(argv)
    specs = [_spec(name) for name in options.catalogs] or list(SPECS)
    status = 0
    for spec in specs:
        if options.command == "extract":
            update(spec, extracted(spec))
            print(f"{spec.name}: {spec.template.relative_to(ROOT)} and its locales updated")
        elif options.command == "check":
            wrong = problems(spec)
            for line in wrong:
                print(f"{spec.name}: {line}", file=sys.stderr)
            status |= bool(wrong)
        elif options.command == "compile":
            for mo in compile_catalogs(spec, force=options.force):
                print(f"compiled {mo.relative_to(ROOT)}")
        else:
            for line in absorb(spec):
                print(f"{spec.name}: {line}")
    return status


if __name__ == "__main__":
    sys.exit(main())
