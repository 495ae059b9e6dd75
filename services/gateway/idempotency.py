"""Idempotent writes for flaky networks: the `Idempotency-Key` request header (IETF httpapi draft
"The Idempotency-Key HTTP Header Field") on every POST that creates or changes something.

A client that lost the answer to a POST sends it again with the same key:

- same key, same request (method, path, query, body) → the first answer again: status, body and
  headers (`Location` included), plus `Idempotent-Replayed: true`; nothing runs twice;
- same key, another request → 422 `idempotency_key_reused`;
- same key while the first request is still running → 409 `idempotency_key_in_flight` with
  `Retry-After`;
- a malformed key → 400 naming the `Idempotency-Key` field.

Keys belong to the caller (the access token's subject; "anonymous" on the public creating
routes), live `IDEMPOTENCY_TTL_HOURS` (24 at least) and are kept in the gateway's PostgreSQL
database, so every replica sees every key. One row per key: claimed with a lease before the
route runs (an atomic upsert: two requests racing for one key cannot both win), completed with
the answer after it. An answer the client may simply retry (5xx, 401, 408, 425, 429) is not
kept: the key is released and the next try runs the request. A gateway that dies mid-request
leaves its claim to expire after the lease (`IDEMPOTENCY_LEASE_SECONDS`).

The answer is recorded even when the client has gone: the route runs to its end (uvicorn never
cancels it on a disconnect), the middleware keeps what it would have sent, and the retry gets it.
The authentication, token and password routes take no key: their bodies or answers carry
secrets (passwords, link and refresh tokens, access tokens) that have no place in this store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers, State
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.models import IdempotencyKey
from services.gateway.problems import (
    FieldError,
    ProblemException,
    problem_response,
    validation_problem,
)
from services.kit.db import create_engine
from services.kit.errors import Unauthenticated
from services.kit.telemetry import instrument_engine

log = logging.getLogger("services.gateway.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
ANONYMOUS = "anonymous"
# The keyed POSTs open to strangers (`security: []`): a key without a token is "anonymous"'s
# there; elsewhere a request without a token is the route's 401, never a shared key's 422.
PUBLIC_PATHS: list[re.Pattern[str]] = [
    re.compile(r"^/v1/associations/[^/]+/(?:dps-requests|trainings/[^/]+/registrations)/?$")
]
MAX_KEY_LENGTH = 255
# Visible ASCII but `"` and `\`: a UUID, a ULID, any token a client makes. The draft's
# structured-field form (the same token in double quotes) is accepted too.
_TOKEN = r"[!#-\[\]-~]{1,255}"
KEY_PATTERN = rf'^(?:{_TOKEN}|"{_TOKEN}")$'
_KEY = re.compile(KEY_PATTERN)
KEY_RULE = "must be 1 to 255 visible ASCII characters without quotes or backslashes, e.g. a UUID"
# Their bodies or answers carry secrets (passwords, link, refresh and access tokens).
NOT_IDEMPOTENT_PREFIXES = ("/v1/auth/", "/v1/password/", "/v1/registrations")
# Answers a client may simply retry: kept by nobody, the next try runs the request again.
_RETRYABLE = frozenset({401, 408, 425, 429})
# A POST answer is a small JSON document; one past this is answered but not kept.
MAX_STORED_BODY = 4 * 1024 * 1024
# Per-request headers, set afresh on every answer (RequestContext).
_NOT_STORED = frozenset({"x-request-id", "date", "server", "content-length"})


def applies(method: str, path: str) -> bool:
    """Whether a route takes an Idempotency-Key: every POST but the credential routes."""
    return method.upper() == "POST" and not path.startswith(NOT_IDEMPOTENT_PREFIXES)


def parse_key(raw: str) -> str | None:
    """The key of a header value (bare or quoted), or None when malformed."""
    if not _KEY.match(raw):
        return None
    return raw[1:-1] if raw.startswith('"') else raw


def fingerprint(method: str, path: str, query: bytes, content_type: str, body: bytes) -> str:
    """SHA-256 of what makes a request this request. A JSON body counts by its meaning (key
    order and spacing do not matter), so a client that rebuilds the same request matches."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    canonical = body
    if body and (media_type == "application/json" or media_type.endswith("+json")):
        with contextlib.suppress(ValueError, RecursionError):
            canonical = json.dumps(
                json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, media_type.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


# --- the store -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claimed:
    """This request runs; `lease` identifies the claim when it completes or is released."""

    lease: datetime


@dataclass(frozen=True)
class Replay:
    answer: Answer


@dataclass(frozen=True)
class Mismatch:
    pass


@dataclass(frozen=True)
class InFlight:
    retry_after: int


Outcome = Claimed | Replay | Mismatch | InFlight


def utcnow() -> datetime:
    return datetime.now(UTC)


class StoreUnavailable(Exception):
    """The gateway's database did not answer: the request cannot be made safe to retry."""


class IdempotencyStore:
    """The keys in PostgreSQL (table `idempotency_keys`), shared by every gateway replica."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl: timedelta = timedelta(hours=24),
        lease: timedelta = timedelta(seconds=120),
        clock: Callable[[], datetime] = utcnow,
        owns_engine: bool = False,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.lease = lease
        self.clock = clock
        self._owns_engine = owns_engine
        self._table: Table = IdempotencyKey.__table__  # type: ignore[assignment]

    @classmethod
    def connect(
        cls, url: str, *, pool_size: int, ttl: timedelta, lease: timedelta
    ) -> IdempotencyStore:
        """A store with its own engine (connections are opened on first use)."""
        engine = create_engine(url, pool_size=pool_size)
        instrument_engine(engine)
        return cls(engine, ttl=ttl, lease=lease, owns_engine=True)

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()

    async def _run(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            async with self.engine.begin() as connection:
                return await work(connection)
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            raise StoreUnavailable(str(error)) from error

    async def claim(
        self, *, principal: str, key: str, fingerprint: str, method: str, path: str
    ) -> Outcome:
        """Claims the key for this request, or says why not. One upsert decides between
        racing requests: the key is free, or expired, or an abandoned claim of this request."""
        now = self.clock()
        lease = now + self.lease
        t = self._table
        statement = insert(t).values(
            principal=principal,
            key=key,
            fingerprint=fingerprint,
            method=method,
            path=path[:2048],
            status_code=None,
            response_headers=None,
            response_body=None,
            locked_until=lease,
            created_at=now,
            expires_at=now + self.ttl,
        )
        excluded = statement.excluded
        upsert = statement.on_conflict_do_update(
            index_elements=[t.c.principal, t.c.key],
            set_={
                "fingerprint": excluded.fingerprint,
                "method": excluded.method,
                "path": excluded.path,
                "status_code": None,
                "response_headers": None,
                "response_body": None,
                "locked_until": excluded.locked_until,
                "created_at": excluded.created_at,
                "expires_at": excluded.expires_at,
            },
            where=or_(
                t.c.expires_at <= now,
                and_(
                    t.c.status_code.is_(None),
                    t.c.locked_until <= now,
                    t.c.fingerprint == excluded.fingerprint,
                ),
            ),
        ).returning(t.c.key)

        async def work(connection: Any) -> Outcome:
            if (await connection.execute(upsert)).first() is not None:
                return Claimed(lease)
            row = (
                await connection.execute(
                    select(
                        t.c.fingerprint,
                        t.c.status_code,
                        t.c.response_headers,
                        t.c.response_body,
                        t.c.locked_until,
                    ).where(t.c.principal == principal, t.c.key == key)
                )
            ).first()
            if row is None:  # purged between the two statements: as good as free next time
                return InFlight(retry_after=1)
            if row.fingerprint != fingerprint:
                return Mismatch()
            if row.status_code is None:
                left = (row.locked_until - now).total_seconds() if row.locked_until else 1
                return InFlight(retry_after=max(1, min(int(left) + 1, 5)))
            headers = [(str(name), str(value)) for name, value in row.response_headers or []]
            return Replay(Answer(row.status_code, headers, bytes(row.response_body or b"")))

        outcome: Outcome = await self._run(work)
        return outcome

    async def complete(self, *, principal: str, key: str, lease: datetime, answer: Answer) -> bool:
        """Keeps the answer of a claimed request; False if the claim was lost meanwhile."""
        t = self._table
        statement = (
            update(t)
            .where(
                t.c.principal == principal,
                t.c.key == key,
                t.c.status_code.is_(None),
                t.c.locked_until == lease,
            )
            .values(
                status_code=answer.status,
                response_headers=[list(pair) for pair in answer.headers],
                response_body=answer.body,
                locked_until=None,
            )
        )

        async def work(connection: Any) -> bool:
            return bool((await connection.execute(statement)).rowcount)

        done: bool = await self._run(work)
        return done

    async def release(self, *, principal: str, key: str, lease: datetime) -> None:
        """Frees a claimed key: the request may run again on the next try."""
        t = self._table
        statement = delete(t).where(
            t.c.principal == principal,
            t.c.key == key,
            t.c.status_code.is_(None),
            t.c.locked_until == lease,
        )

        async def work(connection: Any) -> None:
            await connection.execute(statement)

        await self._run(work)

    async def purge(self, *, batch: int = 5000) -> int:
        """Deletes expired keys, a batch per transaction (replicas purging at once skip each
        other's rows); answers how many went."""
        statement = text(
            "DELETE FROM idempotency_keys WHERE ctid IN ("
            " SELECT ctid FROM idempotency_keys WHERE expires_at <= :now"
            " LIMIT :batch FOR UPDATE SKIP LOCKED)"
        )
        total = 0
        while True:
            now = self.clock()

            async def work(connection: Any, now: datetime = now) -> int:
                result = await connection.execute(statement, {"now": now, "batch": batch})
                return int(result.rowcount)

            gone: int = await self._run(work)
            total += gone
            if gone < batch:
                return total


async def purge_forever(store: IdempotencyStore, interval: float) -> None:
    """The gateway's housekeeping: expired keys go every `interval` seconds."""
    while True:
        await asyncio.sleep(interval)
        try:
            gone = await store.purge()
        except StoreUnavailable:
            log.warning("expired idempotency keys could not be purged; will try again")
            continue
        if gone:
            log.info("expired idempotency keys purged", extra={"purged": gone})


# --- the middleware ------------------------------------------------------------------------


def _routing_path(scope: Scope) -> str:
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def _in_flight(retry_after: int) -> ProblemException:
    return ProblemException(
        409,
        "idempotency_key_in_flight",
        "A request with this Idempotency-Key is still being processed. "
        "Retry after Retry-After seconds to get its answer.",
        headers={"Retry-After": str(retry_after)},
    )


def _reused() -> ProblemException:
    return ProblemException(
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was already used for a different request. "
        "Send a new key with a new request.",
    )


def _unavailable() -> ProblemException:
    return ProblemException(
        503,
        "unavailable",
        "The request cannot be made safe to retry right now. Try again shortly.",
        headers={"Retry-After": "1"},
    )


def keeps(status: int) -> bool:
    """Whether an answer is kept for replay: the final ones, not those a client just retries."""
    return status < 500 and status not in _RETRYABLE


class Idempotency:
    """Plain ASGI: a keyed POST is claimed, run once, and its answer kept for the retries.

    Sits inside BodyLimit (a refused body is never read) and outside SafeText and the routes.
    `state` is the app's: `state.idempotency` (the store, None when the gateway has no
    database) and `state.identity` (whose verifier says whose key it is).
    """

    def __init__(self, app: ASGIApp, *, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        values = headers.getlist(HEADER)
        path = _routing_path(scope)
        if not values or not applies("POST", path):
            await self.app(scope, receive, send)
            return
        key = parse_key(values[0]) if len(values) == 1 else None
        if key is None:
            await self._refuse(
                scope,
                receive,
                send,
                validation_problem(
                    [
                        FieldError(
                            HEADER, KEY_RULE, "string_pattern_mismatch", {"pattern": KEY_PATTERN}
                        )
                    ]
                ),
            )
            return
        principal = await self._principal(headers, path)
        if principal is None:  # no or a refused token: the route answers 401, nothing to keep
            await self.app(scope, receive, send)
            return
        store: IdempotencyStore | None = getattr(self.state, "idempotency", None)
        if store is None:
            log.error("an Idempotency-Key arrived but the gateway has no DATABASE_URL")
            await self._refuse(scope, receive, send, _unavailable())
            return
        try:
            body = await _read_body(receive)
        except HTTPException as refused:  # BodyLimit, outside, stopped an oversized body
            problem = ProblemException(refused.status_code, "content_too_large", refused.detail)
            await self._refuse(scope, receive, send, problem)
            return
        print_ = fingerprint(
            "POST",
            path,
            scope.get("query_string", b""),
            headers.get("content-type", ""),
            body,
        )
        try:
            outcome = await store.claim(
                principal=principal, key=key, fingerprint=print_, method="POST", path=path
            )
        except StoreUnavailable:
            log.exception("the idempotency store is unavailable")
            await self._refuse(scope, receive, send, _unavailable())
            return
        if isinstance(outcome, Replay):
            await _send_answer(send, outcome.answer)
        elif isinstance(outcome, Mismatch):
            await self._refuse(scope, receive, send, _reused())
        elif isinstance(outcome, InFlight):
            await self._refuse(scope, receive, send, _in_flight(outcome.retry_after))
        else:
            await self._run_once(scope, receive, send, body, store, principal, key, outcome)

    async def _principal(self, headers: Headers, path: str) -> str | None:
        authorization = headers.get("authorization")
        if authorization is None:  # strangers share "anonymous" on the public routes only
            return ANONYMOUS if any(p.match(path) for p in PUBLIC_PATHS) else None
        scheme, _, token = authorization.partition(" ")
        link = getattr(self.state, "identity", None)
        if scheme.lower() != "bearer" or not token.strip() or link is None:
            return None
        try:
            principal = await link.verifier.verify(token.strip())
        except Unauthenticated:
            return None
        return principal.subject if principal.kind == "user" else None

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, problem: ProblemException
    ) -> None:
        await problem_response(scope, problem)(scope, receive, send)

    async def _run_once(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        store: IdempotencyStore,
        principal: str,
        key: str,
        claim: Claimed,
    ) -> None:
        replayed = False

        async def replay_body() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 500
        kept_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        size = 0
        client_gone = False

        async def capture(message: Message) -> None:
            nonlocal status, size, client_gone
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    text_name = name.decode("latin-1")
                    if text_name.lower() not in _NOT_STORED:
                        kept_headers.append((text_name, value.decode("latin-1")))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= MAX_STORED_BODY:
                    chunks.append(chunk)
            if client_gone:
                return
            try:
                await send(message)
            except OSError:
                # The client hung up: the route still runs to its end and its answer is kept
                # for the retry (the point of the key).
                client_gone = True

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await _quietly(store.release(principal=principal, key=key, lease=claim.lease))
            raise
        if keeps(status) and size <= MAX_STORED_BODY:
            answer = Answer(status, kept_headers, b"".join(chunks))
            await _quietly(
                store.complete(principal=principal, key=key, lease=claim.lease, answer=answer)
            )
        else:
            await _quietly(store.release(principal=principal, key=key, lease=claim.lease))


async def _quietly(work: Awaitable[object]) -> None:
    """After the route ran: a store failure here leaves the claim to its lease, and is logged
    (the answer has gone to the client already; refusing it now would lie)."""
    try:
        await asyncio.shield(work)
    except StoreUnavailable:
        log.exception("the answer of a keyed request could not be recorded")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_answer(send: Send, answer: Answer) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


# --- the OpenAPI declaration ---------------------------------------------------------------

PARAMETER = "IdempotencyKey"
_PARAMETER_REF = {"$ref": f"#/components/parameters/{PARAMETER}"}
_DESCRIPTION = (
    'Makes this request safe to retry (IETF draft "The Idempotency-Key HTTP Header Field"). '
    "Send a new key (a UUID) with each new request and the same key with its retries: the same "
    "key and request answer the first answer again (status, body, Location; "
    "`Idempotent-Replayed: true`), the same key with another request is 422, and a retry while "
    "the first request still runs is 409 with Retry-After. Keys are the caller's own and are "
    "kept at least 24 hours."
)


HEADERS: dict[str, dict[str, Any]] = {
    REPLAYED_HEADER: {
        "description": "`true` when this is the kept answer of an earlier request with the same "
        "Idempotency-Key (nothing ran again); absent on a first answer.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def declare(document: dict[str, Any], *, ttl_hours: float = 24) -> None:
    """Declares the header, once, as a reusable parameter on every keyed POST of `document`,
    with what it brings: 409 (in flight, Retry-After), 422 (reused), and `Idempotent-Replayed`
    on the success answer. Runs after the document's statuses and headers are complete."""
    components = document.setdefault("components", {})
    components.setdefault("parameters", {})[PARAMETER] = {
        "name": HEADER,
        "in": "header",
        "required": False,
        "description": _DESCRIPTION.replace("24 hours", f"{ttl_hours:g} hours"),
        "schema": {"type": "string", "minLength": 1, "maxLength": 257, "pattern": KEY_PATTERN},
        "example": "8e03978e-40d5-43e8-bc93-6894a57f9324",
    }
    problem = {"application/problem+json": {"schema": _ref("schemas", "Problem")}}
    for path, item in document.get("paths", {}).items():
        operation = item.get("post")
        if operation is None or not applies("POST", path):
            continue
        parameters = [
            p
            for p in operation.get("parameters", [])
            if str(p.get("name", "")).lower() != HEADER.lower()
        ]
        operation["parameters"] = [*parameters, dict(_PARAMETER_REF)]
        responses: dict[str, Any] = operation.setdefault("responses", {})
        malformed = responses.setdefault(
            "400",
            {
                "description": "The request breaks the published schema: `errors` names each "
                "bad field, with its code (here at least a malformed Idempotency-Key).",
                "content": dict(problem),
                "headers": {},
            },
        )
        malformed.setdefault("headers", {}).setdefault(
            "X-Request-ID", _ref("headers", "X-Request-ID")
        )
        conflict = responses.setdefault(
            "409", {"description": "", "content": dict(problem), "headers": {}}
        )
        conflict["description"] = (
            conflict["description"].rstrip() + " Or a request with the same Idempotency-Key "
            "is still in flight (`idempotency_key_in_flight`, with Retry-After)."
        ).strip()
        conflict.setdefault("headers", {})["Retry-After"] = _ref("headers", "Retry-After")
        conflict["headers"].setdefault("X-Request-ID", _ref("headers", "X-Request-ID"))
        unusable = responses.setdefault(
            "422", {"description": "", "content": dict(problem), "headers": {}}
        )
        unusable["description"] = (
            unusable["description"].rstrip() + " Or the Idempotency-Key was already used for a "
            "different request (`idempotency_key_reused`)."
        ).strip()
        unusable.setdefault("headers", {}).setdefault(
            "X-Request-ID", _ref("headers", "X-Request-ID")
        )
        for code, answer in responses.items():
            if code.startswith("2"):
                answer.setdefault("headers", {})[REPLAYED_HEADER] = _ref("headers", REPLAYED_HEADER)
