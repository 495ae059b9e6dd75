"""axe-core on every page the browser tests visit: zero violations, or the test fails naming them.

axe-core comes from npm (`node_modules/axe-core/axe.min.js`, installed by `make`). It is added to
every document of a watched page as an init script (so the portal's Content-Security-Policy, which
allows only its own scripts, stays as it is), with a runner that checks the document once it has
loaded and again after each htmx swap. The results wait in the page until the test leaves it:
before each action that may navigate (`goto`, `reload`, a click, a key press) the watcher takes
them, so a page is never left unchecked because the test moved on quickly.

Beside axe's rules the runner checks one of ours: every link of a form's error summary reaches
its field (a summary that points nowhere is what a keyboard user meets first).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error, Keyboard, Locator, Page

AXE_PATH = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"

# Runs axe once the document has loaded, then after each htmx swap (queued: axe runs one at a
# time), keeping the violations until `window.__guichetAxe()` hands them over.
_RUNNER = r"""
(() => {
  if (window !== window.top || window.__guichetAxe) { return; }
  const found = [];
  let queued = false;
  // Every rule axe runs by default, and WCAG 2.2's target size (24 px), which it does not.
  const options = { resultTypes: ["violations"], rules: { "target-size": { enabled: true } } };
  const run = () => axe.run(document, options).then((result) => {
    const summaryLinks = Array.from(document.querySelectorAll(".alert a[href^='#']"))
      .filter((a) => !document.getElementById(decodeURIComponent(a.hash.slice(1))))
      .map((a) => a.getAttribute("href"));
    found.push({
      url: location.pathname + location.search,
      violations: result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ") + " — "
          + (n.failureSummary || "").split("\n").slice(1).join(" ").trim()),
      })),
      summaryLinks,
    });
  }).catch((error) => { found.push({ url: location.pathname, error: String(error) }); });
  let chain = new Promise((resolve) => {
    if (document.readyState === "complete") { resolve(); }
    else { window.addEventListener("load", () => resolve(), { once: true }); }
  }).then(run);
  document.addEventListener("htmx:afterSettle", () => {
    if (queued) { return; }
    queued = true;
    chain = chain.then(() => { queued = false; return run(); });
  });
  window.__guichetAxe = () => chain.then(() => found.splice(0));
})();
"""


@cache
def _script() -> str:
    if not AXE_PATH.exists():
        raise RuntimeError(f"{AXE_PATH} is missing: run `make install` (npm ci) first")
    return AXE_PATH.read_text() + "\n" + _RUNNER


@dataclass
class AxeWatch:
    """The pages watched in one test, what axe found on them, and how long it took."""

    pages: list[Page] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def attach(self, page: Page) -> Page:
        page.add_init_script(script=_script())
        self.pages.append(page)
        return page

    def collect(self, page: Page) -> None:
        """Takes the results of the page's current document (waiting for a run in progress)."""
        if page not in self.pages or page.is_closed():
            return
        started = time.perf_counter()
        results: list[dict[str, Any]] = []
        for attempt in range(3):
            try:
                results = page.evaluate("() => window.__guichetAxe ? window.__guichetAxe() : []")
                break
            except Error:  # a navigation replaced the document meanwhile: read the new one
                if attempt == 2:
                    raise
                page.wait_for_load_state()
        self.seconds += time.perf_counter() - started
        for result in results:
            self.checked.append(result["url"])
            if "error" in result:
                self.problems.append(f"{result['url']}: axe failed: {result['error']}")
            for violation in result.get("violations", ()):
                nodes = "\n      ".join(violation["nodes"])
                self.problems.append(
                    f"{result['url']}: [{violation['impact']}] {violation['id']}: "
                    f"{violation['help']}\n      {nodes}"
                )
            for href in result.get("summaryLinks", ()):
                self.problems.append(f"{result['url']}: error summary link {href} reaches no field")

    def report(self) -> str:
        return json.dumps(self.problems, ensure_ascii=False, indent=1)


def _before(watch: AxeWatch, page_of: Callable[[Any], Page | None], method: Any) -> Any:
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        page = page_of(self)
        if page is not None:
            watch.collect(page)
        return method(self, *args, **kwargs)

    return wrapped


def watching(monkeypatch: pytest.MonkeyPatch) -> Iterator[AxeWatch]:
    """The `axe_watch` fixture (tests/web/conftest.py): checks every document of every watched
    page before the test leaves it, and at the end; fails the test on any problem."""
    watch = AxeWatch()
    keyboards: dict[int, Page] = {}

    def page_of_keyboard(keyboard: Keyboard) -> Page | None:
        return keyboards.get(id(keyboard))

    attach = watch.attach

    def attach_with_keyboard(page: Page) -> Page:
        keyboards[id(page.keyboard)] = page
        return attach(page)

    watch.attach = attach_with_keyboard  # type: ignore[method-assign]
    for name in ("goto", "reload", "go_back", "go_forward"):
        monkeypatch.setattr(Page, name, _before(watch, lambda p: p, getattr(Page, name)))
    for name in ("click", "dblclick", "press", "check", "uncheck", "tap"):
        monkeypatch.setattr(
            Locator, name, _before(watch, lambda loc: loc.page, getattr(Locator, name))
        )
    monkeypatch.setattr(Keyboard, "press", _before(watch, page_of_keyboard, Keyboard.press))
    yield watch
    for page in watch.pages:
        watch.collect(page)
    if watch.problems:
        pytest.fail(
            f"axe-core: {len(watch.problems)} problem(s) on the pages visited:\n"
            + "\n".join(watch.problems),
            pytrace=False,
        )
