"""Server time of every portal page at demo volumes: p50 and p95 per page, for each demo user.

Signs in to the web portal as each demo user (and the operator), walks every page reachable from
their home by links (GET only, same site; never sign-out, the language switch or a download),
at most `--per-pattern` pages of one shape (`/partners/{id}/orders/{id}` is one shape), then
requests each page `--rounds` times, round by round. The time is the portal's own: its
`Server-Timing: app;dur=…` header (the page's whole server time, gateway calls included), so the
client's cost does not count.

Done when: every page's p95 is under 300 ms (exit 1 otherwise, naming the slow pages).

Run against `make dev` (demo volumes: 100,000 client records, the partners' order history…):
    python -m bench.pages --web-url http://localhost:3000 --admin-password <ops.admin's password>
(the password is printed by `make dev`, and kept in .state/secrets.json, read by default).
Without `--web-url` it starts its own stack with the same demo data (several minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pyotp

from services.devstack.demo import DEMO, DEMO_PASSWORD

BUDGET_MS = 300.0
ROOT = Path(__file__).resolve().parents[1]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"/\d+(?=/|$)")
# Links a person follows that are not pages to time (they act, or leave, or download).
_SKIP = re.compile(r"^/(sign-out|static/|favicon)|/(proof|attachments?)/|[?&]lang=|download")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href and not href.startswith(("#", "mailto:", "tel:")):
                self.hrefs.append(href)


def shape(path: str) -> str:
    """`/partners/<uuid>/orders/<uuid>?status=x` → `/partners/{id}/orders/{id}?status`."""
    parts = urlsplit(path)
    text = _NUMBER.sub("/{n}", _UUID.sub("{id}", parts.path))
    if parts.query:
        names = sorted({pair.split("=", 1)[0] for pair in parts.query.split("&")})
        text += "?" + "&".join(names)
    return text


@dataclass
class Timings:
    by_shape: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)


def server_ms(response: httpx.Response, elapsed: float) -> float:
    for part in response.headers.get("server-timing", "").split(","):
        name, _, rest = part.strip().partition(";")
        if name == "app":
            match = re.search(r"dur=([0-9.]+)", rest)
            if match:
                return float(match.group(1))
    return elapsed * 1000


async def signed_in_client(
    web_url: str, username: str, password: str, totp_secret: str | None = None
) -> httpx.AsyncClient:
    """A portal session; an account with an authenticator app (the ops admin) answers the
    second step with its current code."""
    client = httpx.AsyncClient(base_url=web_url, timeout=60, follow_redirects=True)
    answer = await client.post(
        "/sign-in", data={"username": username, "password": password, "next": "/"}
    )
    if totp_secret and 'name="ticket"' in answer.text:
        hidden = dict(re.findall(r'name="(ticket|methods)" value="([^"]*)"', answer.text))
        answer = await client.post(
            "/sign-in/second-factor",
            data={**hidden, "next": "/", "code": pyotp.TOTP(totp_secret).now()},
        )
    if answer.status_code != 200 or "/sign-in" in str(answer.url):
        await client.aclose()
        raise SystemExit(f"{username} could not sign in ({answer.status_code})")
    return client


async def crawl(client: httpx.AsyncClient, *, per_shape: int, limit: int) -> list[str]:
    """Pages reachable from the home page by links, breadth first, a few of each shape."""
    seen: set[str] = set()
    taken: dict[str, int] = defaultdict(int)
    queue = ["/"]
    pages: list[str] = []
    while queue and len(pages) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        key = shape(path)
        if taken[key] >= per_shape:
            continue
        answer = await client.get(path)
        if answer.status_code != 200 or "text/html" not in answer.headers.get("content-type", ""):
            continue
        taken[key] += 1
        pages.append(path)
        parser = _Links()
        parser.feed(answer.text)
        for href in parser.hrefs:
            target = urlsplit(urljoin(str(answer.url), href))
            if target.netloc and target.netloc != urlsplit(str(client.base_url)).netloc:
                continue
            local = target.path + (f"?{target.query}" if target.query else "")
            if not _SKIP.search(local) and local not in seen:
                queue.append(local)
    return pages


async def measure(
    client: httpx.AsyncClient, pages: list[str], rounds: int, timings: Timings, who: str
) -> None:
    for _ in range(rounds):
        for path in pages:
            started = time.perf_counter()
            answer = await client.get(path)
            elapsed = time.perf_counter() - started
            if answer.status_code >= 500:
                timings.failures.append(f"{who} {path}: {answer.status_code}")
                continue
            timings.by_shape[shape(path)].append(server_ms(answer, elapsed))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(fraction * 100) - 1]


def report(timings: Timings) -> int:
    rows = sorted(
        ((percentile(v, 0.95), percentile(v, 0.5), len(v), k) for k, v in timings.by_shape.items()),
        reverse=True,
    )
    print(f"{'page':<72} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    for p95, p50, n, key in rows:
        flag = "  SLOW" if p95 >= BUDGET_MS else ""
        print(f"{key[:72]:<72} {n:>4} {p50:>8.1f} {p95:>8.1f}{flag}")
    slow = [key for p95, _, _, key in rows if p95 >= BUDGET_MS]
    everything = [ms for values in timings.by_shape.values() for ms in values]
    if everything:
        print(
            f"\n{len(rows)} page shapes, {len(everything)} requests: all pages p50 "
            f"{percentile(everything, 0.5):.1f} ms, p95 {percentile(everything, 0.95):.1f} ms; "
            f"budget p95 < {BUDGET_MS:.0f} ms per page: "
            + ("met" if not slow else f"NOT met on {len(slow)}")
        )
    for failure in timings.failures:
        print("failed:", failure)
    return 1 if slow or timings.failures else 0


async def run(
    web_url: str, admin_password: str, args: argparse.Namespace, admin_totp_secret: str = ""
) -> int:
    users = [(u.username, DEMO_PASSWORD) for org in DEMO for u in org.users]
    users.append(("ops.admin", admin_password))
    if args.users:
        users = [u for u in users if u[0] in args.users.split(",")]
    timings = Timings()
    for username, password in users:
        secret = admin_totp_secret if username == "ops.admin" else None
        client = await signed_in_client(web_url, username, password, secret)
        try:
            pages = await crawl(client, per_shape=args.per_pattern, limit=args.limit)
            print(f"{username}: {len(pages)} pages", flush=True)
            await measure(client, pages, args.rounds, timings, username)
        finally:
            await client.aclose()
    return report(timings)


async def run_own_stack(args: argparse.Namespace) -> int:
    from services.devstack.components import COMPONENTS, DEFAULT_PORTS
    from services.devstack.demo import load_demo_data
    from services.devstack.stack import ADMIN_USERNAME, Stack
    from services.kit.ports import free_port

    with tempfile.TemporaryDirectory(prefix="bench-pages-") as folder:
        ports = {name: free_port() for name in DEFAULT_PORTS}
        ports |= {f"{component.name}_metrics": free_port() for component in COMPONENTS}
        stack = Stack(Path(folder), ports, echo=False)
        try:
            await stack.start()
            await load_demo_data(
                stack.grpc_address("identity"),
                ADMIN_USERNAME,
                stack.secrets.admin_password,
                stack.smtp,
                admin_totp_secret=stack.secrets.admin_totp_secret,
                addresses={
                    c.name: stack.grpc_address(c.port_key) for c in COMPONENTS if c.port_key
                },
            )
            return await run(
                stack.web_url, stack.secrets.admin_password, args, stack.secrets.admin_totp_secret
            )
        finally:
            await stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web-url", help="a running portal (make dev); else start a stack")
    parser.add_argument("--admin-password", help="ops.admin's (default: .state/secrets.json)")
    parser.add_argument("--rounds", type=int, default=5, help="requests per page (default 5)")
    parser.add_argument("--per-pattern", type=int, default=2, help="pages of one shape (2)")
    parser.add_argument("--limit", type=int, default=120, help="pages per user at most (120)")
    parser.add_argument("--users", help="comma-separated usernames (default: every demo user)")
    args = parser.parse_args()
    if not args.web_url:
        return asyncio.run(run_own_stack(args))
    secrets = ROOT / ".state" / "secrets.json"
    saved = json.loads(secrets.read_text()) if secrets.exists() else {}
    password = args.admin_password or saved.get("admin_password", "")
    return asyncio.run(run(args.web_url, password, args, saved.get("admin_totp_secret", "")))


if __name__ == "__main__":
    sys.exit(main())
