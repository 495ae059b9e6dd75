"""How the generated client reaches the gateway: one shared HTTP connection pool, a bearer token
per signed-in person, and RFC 9457 problems raised as `ApiProblem`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

PROBLEM_MEDIA_TYPE = "application/problem+json"
# The gateway's device cookie and the routes that read it.
DEVICE_COOKIE = "guichet_device"
DEVICE_COOKIE_PATH = "/v1/auth"


@dataclass
class ApiProblem(Exception):
    """A refusal from the gateway, as its RFC 9457 problem document."""

    status: int
    problem: dict[str, Any]
    # Seconds to wait before trying again (the Retry-After of a 429 or 503), when given.
    retry_after: int | None = None

    @property
    def reason(self) -> str:
        """The stable last segment of the problem type (`.../problems/not_found` → `not_found`)."""
        return str(self.problem.get("type", "")).rsplit("/", 1)[-1] or "about:blank"

    @property
    def field_errors(self) -> dict[str, str]:
        """Each invalid field the gateway named (the first complaint per field)."""
        errors: dict[str, str] = {}
        for error in self.problem.get("errors") or ():
            errors.setdefault(str(error.get("field", "")), str(error.get("detail", "")))
        return errors

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.problem.get('detail', '')}"


# Called on a 401 with the token that failed; answers a fresh access token, or None.
Refresher = Callable[[], Awaitable[str | None]]


@dataclass
class Transport:
    http: httpx.AsyncClient
    access_token: str | None = None
    # The browser's address and language, passed on so that the gateway's per-IP brakes and logs
    # see the person rather than the portal.
    forwarded_for: str | None = None
    language: str | None = None
    refresh: Refresher | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # The gateway's device cookie of a complete sign-in (docs/identity.md): sent back to the
    # sign-in routes, and the one a sign-in answered with kept here for the portal to store.
    device_token: str | None = None
    received_device_token: str | None = None
    # What this request's gateway calls cost: the portal's Server-Timing header says it.
    calls: int = 0
    seconds: float = 0.0

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = dict(self.headers)
        if self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        if self.forwarded_for:
            headers["X-Forwarded-For"] = self.forwarded_for
        if self.language:
            headers["Accept-Language"] = self.language
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _device_header(self, path: str) -> dict[str, str]:
        """The device cookie, to the sign-in routes only (as a browser would, by its Path)."""
        if self.device_token and path.startswith(DEVICE_COOKIE_PATH):
            return {"Cookie": f"{DEVICE_COOKIE}={self.device_token}"}
        return {}

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        read: str = "json",
    ) -> Any:
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        for attempt in (1, 2):
            started = time.perf_counter()
            response = await self.http.request(
                method,
                path,
                params=params,
                json=json,
                content=content,
                headers={
                    **self._headers(content_type if content is not None else None),
                    **self._device_header(path),
                },
            )
            self.calls += 1
            self.seconds += time.perf_counter() - started
            if response.status_code == 401 and attempt == 1 and self.refresh is not None:
                fresh = await self.refresh()
                if fresh:
                    self.access_token = fresh
                    continue
            break
        if (device := response.cookies.get(DEVICE_COOKIE)) is not None:
            self.received_device_token = device
        if response.status_code >= 400:
            raise ApiProblem(
                response.status_code, _problem(response), _retry_after(response.headers)
            )
        if read == "bytes":
            return response.content
        if read == "none" or response.status_code == 204 or not response.content:
            return None
        return response.json()


def _retry_after(headers: httpx.Headers) -> int | None:
    """Retry-After in seconds (the gateway sends seconds, never an HTTP date)."""
    value = headers.get("retry-after", "")
    return int(value) if value.isdigit() else None


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if isinstance(document, dict):
        return document
    return {"type": "about:blank", "status": response.status_code, "detail": response.reason_phrase}
