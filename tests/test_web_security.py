"""The portal's side of sign-in security, without a browser: a 429 says its wait in words, the
device cookie travels only to the gateway's sign-in routes and only for its own browser (the
shared HTTP client keeps no cookie), and a Retry-After reaches the page."""

from __future__ import annotations

import httpx
import pytest

from web.app import refuse_cookies
from web.client.transport import ApiProblem, Transport
from web.problems import summary_message, wait_in_words


@pytest.mark.parametrize(
    ("seconds", "french", "english"),
    [
        (1, "1 seconde", "1 second"),
        (45, "45 secondes", "45 seconds"),
        (60, "1 minute", "1 minute"),
        (61, "2 minutes", "2 minutes"),  # never shorter than the real wait
        (900, "15 minutes", "15 minutes"),
        (3600, "60 minutes", "60 minutes"),
        (7201, "3 heures", "3 hours"),
    ],
)
def test_a_wait_is_said_in_words(seconds: int, french: str, english: str) -> None:
    # CLDR puts a no-break space between some numbers and their unit: it is the same words.
    assert wait_in_words("fr", seconds).replace("\xa0", " ") == french
    assert wait_in_words("en", seconds).replace("\xa0", " ") == english


def test_a_429_with_retry_after_tells_how_long_to_wait() -> None:
    problem = ApiProblem(429, {"type": "https://guichet.dev/problems/resource_exhausted"}, 61)
    assert summary_message("fr", problem) == "Trop de tentatives : réessayez dans 2 minutes."
    assert summary_message("en", problem) == "Too many attempts: try again in 2 minutes."


def _gateway(seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/auth/token":
            return httpx.Response(
                200,
                json={"access_token": "a", "refresh_token": "r"},
                headers={"set-cookie": "guichet_device=d1.new; Path=/v1/auth; HttpOnly"},
            )
        if request.url.path == "/v1/password/forgot":
            return httpx.Response(
                429,
                json={"type": "https://guichet.dev/problems/resource_exhausted"},
                headers={"retry-after": "42", "content-type": "application/problem+json"},
            )
        return httpx.Response(200, json={})

    return httpx.MockTransport(answer)


async def test_the_device_cookie_goes_to_the_sign_in_routes_only_and_is_kept_per_visitor() -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=_gateway(seen), base_url="http://gateway") as http:
        refuse_cookies(http)
        mine = Transport(http, device_token="d1.mine")
        await mine.call("POST", "/v1/auth/token", json={})
        await mine.call("GET", "/v1/me")
        assert seen[0].headers["cookie"] == "guichet_device=d1.mine"
        assert "cookie" not in seen[1].headers
        assert mine.received_device_token == "d1.new"
        # The next visitor's requests carry nothing of the first one's.
        theirs = Transport(http)
        await theirs.call("POST", "/v1/auth/token", json={})
        assert "cookie" not in seen[2].headers
        assert dict(http.cookies) == {}


async def test_a_refusal_carries_its_retry_after() -> None:
    async with httpx.AsyncClient(transport=_gateway([]), base_url="http://gateway") as http:
        with pytest.raises(ApiProblem) as refused:
            await Transport(http).call("POST", "/v1/password/forgot", json={})
    assert refused.value.status == 429 and refused.value.retry_after == 42
