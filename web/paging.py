"""Long lists page (issue 25, "Fast pages"): a list shows PAGE_SIZE rows, and the shared
`pager` macro (web/templates/_paging.html) links to the next page and back to the first, so a
person reaches every row, not only those of the first page the gateway answered.

The gateway's pages are keyset pages: an opaque `next_page_token`, no page numbers, no way back
but the first page. The token travels in the page's own query string (a parameter per paged list,
so that a page with two lists pages each), next to the page's other filters, which the links
keep. A token the gateway refuses (forged, or from another list) becomes `PageLinkRefused`: the
app answers a sentence and a link to the first page (web/app.py), not an error in the API's words.

Lists that feed a form (every group in a choice, every employee behind "Tous", a name lookup)
read every page server-side with `every_item`: a choice that showed only the first page would
silently hide the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.datastructures import URL
from starlette.requests import Request

from web.client.transport import ApiProblem

# Rows a paged list shows at once (the tests lower it to page a few seeded rows).
PAGE_SIZE = 50
# Rows per gateway call when a page needs every row (the gateway's largest page is 500).
EVERY_PAGE_SIZE = 200
# How many calls `every_item` makes at most: a bound on one page's work, not a silent cut (it
# raises beyond it rather than show a partial choice).
EVERY_MAX_CALLS = 50

P = TypeVar("P", bound=Mapping[str, Any])
# A list route of web/client/api.py with its path arguments bound (functools.partial): called
# with page_size= and page_token=.
Fetch = Callable[..., Awaitable[P]]


class PageLinkRefused(Exception):
    """The gateway refused the page token of a link: the page says so and offers the first page."""

    def __init__(self, first_page: str) -> None:
        super().__init__(first_page)
        self.first_page = first_page


@dataclass(frozen=True)
class Pager:
    """The navigation of one paged list: where its first and next pages are (None: none)."""

    first_url: str | None
    next_url: str | None

    @property
    def shown(self) -> bool:
        return bool(self.first_url or self.next_url)


def asked(request: Request, param: str = "page_token") -> str:
    """A list's page token as the address asks for it. A page rendered after a form's post
    shows its lists' first pages (its links then lead to the page's own address)."""
    if request.method != "GET":
        return ""
    return request.query_params.get(param, "")


def _url(url: URL, path: str | None) -> URL:
    return url.replace(path=path) if path else url


def pager(
    url: URL,
    page_token: str,
    next_page_token: str | None,
    *,
    param: str = "page_token",
    path: str | None = None,
) -> Pager:
    """The links of a list whose current page came from `page_token` ('' for the first page).
    The other query parameters (a search, a filter, another list's page) are kept; `path` is
    the page's own address when it is rendered from another one (a refused form's post)."""
    here = _url(url, path)
    first = str(here.remove_query_params(param)) if page_token else None
    following = None
    if next_page_token:
        following = str(here.include_query_params(**{param: next_page_token}))
    return Pager(_relative(first), _relative(following))


def _relative(address: str | None) -> str | None:
    """A link within the site: path and query, whatever host the request came through."""
    if address is None:
        return None
    parsed = URL(address)
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


async def paged(
    url: URL,
    fetch: Fetch[P],
    page_token: str,
    *,
    param: str = "page_token",
    path: str | None = None,
    size: int | None = None,
) -> tuple[P, Pager]:
    """One page of `size` rows (PAGE_SIZE by default) from `page_token` ('' for the first),
    and its navigation. A token the gateway refuses raises PageLinkRefused."""
    try:
        page = await fetch(page_size=size or PAGE_SIZE, page_token=page_token or None)
    except ApiProblem as problem:
        if page_token and problem.status in (400, 422) and "page_token" in problem.field_errors:
            first = _relative(str(_url(url, path).remove_query_params(param)))
            raise PageLinkRefused(first or "/") from problem
        raise
    links = pager(url, page_token, page.get("next_page_token"), param=param, path=path)
    return page, links


async def every_item(fetch: Fetch[Any]) -> list[Any]:
    """Every row of a list, page after page (for a choice or a lookup that must be whole)."""
    items: list[Any] = []
    token: str | None = None
    for _ in range(EVERY_MAX_CALLS):
        page = await fetch(page_size=EVERY_PAGE_SIZE, page_token=token)
        items.extend(page["items"])
        token = page.get("next_page_token") or None
        if not token:
            return items
    raise RuntimeError(f"more than {EVERY_MAX_CALLS} pages of {EVERY_PAGE_SIZE} rows")


async def whole_list(page: Mapping[str, Any], page_token: str, fetch: Fetch[Any]) -> list[Any]:
    """Every row of a list a page already shows one page of (a table, and a choice of the same
    rows in a form): that page itself when it is the first and the only one, else every page."""
    if not page_token and not page.get("next_page_token"):
        return list(page["items"])
    return await every_item(fetch)
