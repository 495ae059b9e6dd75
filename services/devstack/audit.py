"""`make audit`: Lighthouse on the main pages of every portal, phone and desktop, signed in.

Lighthouse (npm, `node_modules/.bin/lighthouse`, from the committed lock) drives Debian's
Chromium (`CHROME_PATH`, headless, no sandbox: the same flags as the browser tests) against the
portal of a running `make dev` (`--web-url`), or of a stack it starts itself with the demo data.
For a signed-in page it signs in through the portal's own form first and hands Lighthouse the
session cookies. It prints the accessibility, best-practices and performance scores of each
page and form factor, and exits 1 when one is below the bar: accessibility and best practices
100, performance 95.

Not part of `make test`: forty Lighthouse runs take ten minutes or more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp

from services.devstack.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("accessibility", "best-practices", "performance")
BARS = {"accessibility": 100, "best-practices": 100, "performance": 95}
FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"


@dataclass(frozen=True)
class Target:
    portal: str
    user: str | None  # None: a page for someone not signed in
    path: str  # may name {provider}, {store}, {workshop}, {association}, {operator_org}


TARGETS = (
    Target("account", None, "/sign-in"),
    Target("account", None, "/register?organisation={workshop}"),
    Target("account", "dupont.jean", "/"),
    Target("account", "dupont.jean", "/profile"),
    Target("groups", "dupont.jean", "/providers/{provider}/groups"),
    Target("groups", "dupont.jean", "/providers/{provider}/groups/new"),
    Target("groups", "dupont.jean", "/providers/{provider}/process-requests"),
    Target("support", "bois.user", "/support"),
    Target("support", "bois.user", "/support/tickets"),
    Target("support", "ops.admin", "/support/queue"),
    Target("partners", "napoli.manager", "/partners/{store}"),
    Target("partners", "napoli.manager", "/partners/{store}/products"),
    Target("partners", "napoli.manager", "/partners/{store}/history"),
    Target("workshop", "garage.owner", "/workshops/{workshop}"),
    Target("workshop", "garage.owner", "/workshops/{workshop}/claims"),
    Target("association", "assoc.admin", "/associations/{association}"),
    Target("association", "assoc.admin", "/associations/{association}/duplicates"),
    Target("association", "assoc.admin", "/associations/{association}/records"),
    Target("operator", "ops.admin", "/operator"),
    Target("operator", "garage.owner", "/organisations/{workshop}/accounts"),
)

# Where each placeholder comes from: the first organisation of this kind the user belongs to.
PLACES = {
    "provider": ("dupont.jean", "service_provider"),
    "store": ("napoli.manager", "delivery_partner"),
    "workshop": ("garage.owner", "workshop"),
    "association": ("assoc.admin", "association"),
}


async def cookies_of(
    web_url: str, username: str, password: str, totp_secret: str | None = None
) -> str:
    """Signs in through the portal's form (and its second step with the current TOTP code when
    the account has one, as the ops admin does): the Cookie header of that session."""
    async with httpx.AsyncClient(base_url=web_url, timeout=60) as client:
        answer = await client.post(
            "/sign-in", data={"username": username, "password": password, "next": "/"}
        )
        if answer.status_code == 200 and totp_secret and 'name="ticket"' in answer.text:
            hidden = dict(re.findall(r'name="(ticket|methods)" value="([^"]*)"', answer.text))
            answer = await client.post(
                "/sign-in/second-factor",
                data={**hidden, "next": "/", "code": pyotp.TOTP(totp_secret).now()},
            )
        if answer.status_code != 303:
            raise SystemExit(f"{username} could not sign in ({answer.status_code})")
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


async def places(gateway_url: str, admin_password: str) -> dict[str, str]:
    found: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as api:
        for place, (username, kind) in PLACES.items():
            password = admin_password if username == "ops.admin" else DEMO_PASSWORD
            token = (
                await api.post("/v1/auth/token", json={"username": username, "password": password})
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            me = (await api.get("/v1/me", headers=headers)).json()
            for membership in me["memberships"]:
                organisation_id = str(membership["organisation_id"])
                organisation = (
                    await api.get(f"/v1/organisations/{organisation_id}", headers=headers)
                ).json()
                if organisation["kind"] == kind:
                    found[place] = organisation_id
                    break
    return found


def lighthouse(url: str, cookie: str | None, form_factor: str, chrome: str) -> dict[str, int]:
    command = [
        str(LIGHTHOUSE),
        url,
        "--output=json",
        "--output-path=stdout",
        "--quiet",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--chrome-flags={FLAGS}",
        # The form's page is tested, not a redirect to it: a signed-in page stays signed in.
        "--disable-storage-reset",
    ]
    if form_factor == "desktop":
        command.append("--preset=desktop")
    if cookie:
        command.append(f"--extra-headers={json.dumps({'Cookie': cookie})}")
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CHROME_PATH": chrome},
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"lighthouse failed on {url}: {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    if report.get("runtimeError"):
        raise RuntimeError(f"lighthouse on {url}: {report['runtimeError']}")
    final = report.get("finalDisplayedUrl") or report.get("finalUrl", "")
    if "/sign-in" in final and "/sign-in" not in url:
        raise RuntimeError(f"{url} sent Lighthouse to the sign-in page: the session was lost")
    scores = {name: round(report["categories"][name]["score"] * 100) for name in CATEGORIES}
    failing = [
        f"{audit['id']} ({audit.get('score')})"
        for audit in report["audits"].values()
        if audit.get("score") is not None
        and audit["score"] < 1
        and audit.get("scoreDisplayMode") == "binary"
    ]
    if failing:
        print(f"      not passed: {', '.join(sorted(failing)[:8])}", flush=True)
    return scores


async def run(
    web_url: str,
    gateway_url: str,
    admin_password: str,
    only: str | None,
    admin_totp_secret: str | None = None,
) -> int:
    chrome = os.environ.get("CHROME_PATH") or shutil.which("chromium") or ""
    if not chrome:
        raise SystemExit("no Chromium: apt-get install chromium, or set CHROME_PATH")
    if not LIGHTHOUSE.exists():
        raise SystemExit(f"{LIGHTHOUSE} is missing: run make install (npm ci)")
    found = await places(gateway_url, admin_password)
    sessions: dict[str, str] = {}
    rows: list[tuple[str, str, str, dict[str, int]]] = []
    for target in TARGETS:
        if only and only not in target.portal:
            continue
        cookie = None
        if target.user:
            if target.user not in sessions:
                password = admin_password if target.user == "ops.admin" else DEMO_PASSWORD
                secret = admin_totp_secret if target.user == "ops.admin" else None
                sessions[target.user] = await cookies_of(web_url, target.user, password, secret)
            cookie = sessions[target.user]
        path = target.path.format(**found)
        for form_factor in ("mobile", "desktop"):
            print(f"{target.portal:<12} {form_factor:<8} {path}", flush=True)
            scores = await asyncio.to_thread(
                lighthouse, web_url + path, cookie, form_factor, chrome
            )
            rows.append((target.portal, form_factor, target.path, scores))
    print(f"\n{'portal':<12} {'form':<8} {'page':<44} {'a11y':>5} {'bp':>5} {'perf':>5}")
    below = 0
    for portal, form_factor, path, scores in rows:
        low = [name for name in CATEGORIES if scores[name] < BARS[name]]
        below += bool(low)
        print(
            f"{portal:<12} {form_factor:<8} {path[:44]:<44} {scores['accessibility']:>5} "
            f"{scores['best-practices']:>5} {scores['performance']:>5}" + ("  BELOW" if low else "")
        )
    print(
        f"\n{len(rows)} runs; bars: accessibility and best practices 100, performance 95: "
        + ("all met" if not below else f"{below} below")
    )
    return 1 if below else 0


async def run_own_stack(only: str | None) -> int:
    from services.devstack.components import COMPONENTS, DEFAULT_PORTS
    from services.devstack.demo import load_demo_data
    from services.devstack.stack import ADMIN_USERNAME, Stack
    from services.kit.ports import free_port

    with tempfile.TemporaryDirectory(prefix="audit-") as folder:
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
                stack.web_url,
                stack.gateway_url,
                stack.secrets.admin_password,
                only,
                stack.secrets.admin_totp_secret,
            )
        finally:
            await stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--web-url", help="a running portal (make dev); else start a stack")
    parser.add_argument("--gateway-url", default="http://127.0.0.1:8000")
    parser.add_argument("--admin-password", help="ops.admin's (default: .state/secrets.json)")
    parser.add_argument("--only", help="only the portals whose name contains this")
    args = parser.parse_args()
    if args.web_url:
        secrets = ROOT / ".state" / "secrets.json"
        saved = json.loads(secrets.read_text()) if secrets.exists() else {}
        password = args.admin_password or saved.get("admin_password", "")
        rc = asyncio.run(
            run(
                args.web_url.rstrip("/"),
                args.gateway_url,
                password,
                args.only,
                saved.get("admin_totp_secret") or None,
            )
        )
    else:
        rc = asyncio.run(run_own_stack(args.only))
    sys.stdout.flush()
    os._exit(rc)


if __name__ == "__main__":
    main()
