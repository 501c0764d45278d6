"""The feed fetcher's rules (app/channels/fetch.py), against servers started here on
127.0.0.1: a Starlette app under hypercorn for feeds that answer HTTP, a raw asyncio
server for peers that misbehave below HTTP (never answer, garbage, cut bodies)."""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.channels import fetch
from app.channels.fetch import MAX_BYTES, FeedError, Fetcher, refused
from app.dev.postgres import free_port
from app.dev.servers import start_in_loop

SECRET = "SECRET-TOKEN-123"
FEED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n"
    b"BEGIN:VEVENT\r\nUID:a@airbnb.com\r\nDTSTART;VALUE=DATE:20310301\r\n"
    b"DTEND;VALUE=DATE:20310303\r\nSUMMARY:Reserved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
ETAG = '"v1"'
LAST_MODIFIED = "Sat, 01 Mar 2031 00:00:00 GMT"

REFUSED = [
    "127.0.0.1",
    "10.0.0.5",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::1",
    "fd00::1",
    "fe80::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 around the metadata server
    "fec0::1",
]
PUBLIC = ["8.8.8.8", "2606:4700::1111", "93.184.216.34", "::ffff:8.8.8.8"]


def feed_url(port: int, path: str = "/feed.ics", host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}{path}?s={SECRET}"


def assert_discreet(error: FeedError, port: int | None = None) -> None:
    """Neither the message nor the whole printed traceback holds the URL or its secret."""
    printed = "".join(traceback.format_exception(error))
    for place in (str(error), printed):
        assert SECRET not in place
        assert "feed.ics" not in place
        assert "127.0.0.1" not in place
        if port is not None:
            assert str(port) not in place


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[int]:
    port = free_port()
    stop = await start_in_loop(app, port)
    try:
        yield port
    finally:
        await stop()


@dataclass
class Raw:
    """A TCP server that reads a request's head and then does whatever ``answer`` does."""

    answer: Callable[[Raw, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    port: int = field(default_factory=free_port)
    connections: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            await self.answer(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Raw]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        try:
            yield self
        finally:
            self.released.set()
            server.close()
            for writer in self._writers:
                writer.close()
            await server.wait_closed()


def fixed(*addresses: str) -> Callable[[str, int], Awaitable[list[str]]]:
    """A resolver answering ``addresses`` for any name, recording what it was asked."""
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(addresses)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Every request httpx is asked to send (none is sent: it fails the test's fetch)."""
    seen: list[httpx.Request] = []

    async def send(self: httpx.AsyncClient, request: httpx.Request, **_: Any) -> httpx.Response:
        seen.append(request)
        raise AssertionError("the fetcher tried to connect")

    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    return seen


# ---- what a good feed gives ---------------------------------------------------------


async def test_a_feed_is_fetched_with_its_validators_then_not_modified() -> None:
    """A feed answers its body, ETag and Last-Modified; the next fetch with them sends
    If-None-Match/If-Modified-Since, and the server's 304 gives body None, validators kept."""
    heard: list[dict[str, str]] = []

    async def feed(request: Request) -> Response:
        heard.append(dict(request.headers))
        if request.headers.get("if-none-match") == ETAG:
            return Response(status_code=304, headers={"ETag": ETAG})
        headers = {"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
        return Response(FEED, media_type="text/calendar", headers=headers)

    async with serving(Starlette(routes=[Route("/feed.ics", feed)])) as port:
        fetcher = Fetcher(allow_local=True)
        first = await fetcher.fetch(feed_url(port), None, None)
        second = await fetcher.fetch(feed_url(port), first.etag, first.last_modified)

    assert (first.body, first.etag, first.last_modified) == (FEED, ETAG, LAST_MODIFIED)
    assert (second.body, second.etag, second.last_modified) == (None, ETAG, LAST_MODIFIED)
    assert "if-none-match" not in heard[0]
    assert heard[1]["if-none-match"] == ETAG
    assert heard[1]["if-modified-since"] == LAST_MODIFIED
    assert all(h["user-agent"] == fetch.USER_AGENT for h in heard)


async def test_three_redirects_are_followed_and_the_last_hop_answers() -> None:
    """Up to MAX_REDIRECTS (3) redirects are followed, relative Locations included."""

    async def hop(request: Request) -> Response:
        left = int(request.path_params["left"])
        target = "/feed.ics" if left == 1 else f"/r{left - 1}"
        return Response(status_code=302, headers={"Location": f"{target}?s={SECRET}"})

    async def feed(request: Request) -> Response:
        return Response(FEED, media_type="text/calendar")

    app = Starlette(routes=[Route("/r{left:int}", hop), Route("/feed.ics", feed)])
    async with serving(app) as port:
        fetched = await Fetcher(allow_local=True).fetch(feed_url(port, "/r3"), None, None)
    assert fetched.body == FEED


async def test_a_body_of_exactly_two_mib_is_accepted() -> None:
    """The cap is MAX_BYTES (2 MiB): a body of exactly that size is a feed."""
    body = b"x" * MAX_BYTES

    async def feed(request: Request) -> Response:
        return Response(body)

    async with serving(Starlette(routes=[Route("/feed.ics", feed)])) as port:
        fetched = await Fetcher(allow_local=True).fetch(feed_url(port), None, None)
    assert fetched.body == body


# ---- bad feeds ----------------------------------------------------------------------


async def _not_found(request: Request) -> Response:
    return Response(b"no such feed", status_code=404)


async def _server_error(request: Request) -> Response:
    return Response(b"oops", status_code=500)


async def _huge_declared(request: Request) -> Response:
    return Response(b"x" * (MAX_BYTES + 1), media_type="text/calendar")


async def _huge_chunked(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3 * 16):  # 3 MiB in 64 KiB chunks, no Content-Length
            yield b"x" * 65536

    return StreamingResponse(chunks(), media_type="text/calendar")


async def _loop(request: Request) -> Response:
    return Response(status_code=302, headers={"Location": f"/feed.ics?s={SECRET}"})


async def _nowhere(request: Request) -> Response:
    return Response(status_code=302)


async def _four_hops(request: Request) -> Response:
    left = int(request.query_params.get("left", "4"))
    target = f"/feed.ics?s={SECRET}&left={left - 1}" if left > 1 else "/ok"
    return Response(status_code=307, headers={"Location": target})


async def _ok(request: Request) -> Response:
    return Response(FEED, media_type="text/calendar")


BAD_ANSWERS: dict[str, tuple[Callable[[Request], Awaitable[Response]], str]] = {
    "404": (_not_found, "the feed answered HTTP 404"),
    "500": (_server_error, "the feed answered HTTP 500"),
    "over 2 MiB with Content-Length": (_huge_declared, "the feed is larger than 2 MiB"),
    "over 2 MiB chunked": (_huge_chunked, "the feed is larger than 2 MiB"),
    "a redirect loop": (_loop, "the feed redirects too many times"),
    "a redirect with no Location": (_nowhere, "the feed redirects nowhere"),
    "four redirects": (_four_hops, "the feed redirects too many times"),
}


@pytest.mark.parametrize("case", list(BAD_ANSWERS))
async def test_a_bad_answer_is_a_feed_error_that_keeps_the_url_secret(case: str) -> None:
    """404, 500, a body over 2 MiB (declared or chunked), a redirect loop, a redirect with
    no Location and four redirects are each a FeedError saying why, never where."""
    handler, reason = BAD_ANSWERS[case]
    app = Starlette(routes=[Route("/feed.ics", handler), Route("/ok", _ok)])
    async with serving(app) as port:
        with pytest.raises(FeedError) as raised:
            await Fetcher(allow_local=True).fetch(feed_url(port), None, None)
    assert str(raised.value) == reason
    assert_discreet(raised.value, port)


async def _never_answers(
    raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await raw.released.wait()


async def _stalls_mid_body(
    raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nBEGIN:VCALENDAR\r\n")
    await writer.drain()
    await raw.released.wait()


async def _garbage(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"\x00\xff\x13 this is not HTTP at all\r\n\r\n")
    await writer.drain()


async def _cut_mid_body(
    raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nBEGIN:VCALENDAR\r\n")
    await writer.drain()


RAW_ANSWERS = {
    "never answers": (_never_answers, "the feed timed out"),
    "stalls in the body": (_stalls_mid_body, "the feed timed out"),
    "answers garbage": (_garbage, "the feed could not be fetched (RemoteProtocolError)"),
    "cuts the body short": (_cut_mid_body, "the feed could not be read (RemoteProtocolError)"),
}


@pytest.mark.parametrize("case", list(RAW_ANSWERS))
async def test_a_misbehaving_peer_is_a_feed_error_that_keeps_the_url_secret(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that never answers within the read timeout, stalls in the body, answers
    something that is not HTTP, or closes before the declared length: a FeedError."""
    monkeypatch.setattr(fetch, "TIMEOUT", httpx.Timeout(0.5))
    answer, reason = RAW_ANSWERS[case]
    async with Raw(answer).running() as raw:
        with pytest.raises(FeedError) as raised:
            await Fetcher(allow_local=True).fetch(feed_url(raw.port), None, None)
    assert str(raised.value) == reason
    assert_discreet(raised.value, raw.port)


async def test_nothing_listening_is_a_feed_error() -> None:
    """A port with nobody on it is a FeedError naming the kind of failure only."""
    port = free_port()
    with pytest.raises(FeedError) as raised:
        await Fetcher(allow_local=True).fetch(feed_url(port), None, None)
    assert str(raised.value) == "the feed could not be fetched (ConnectError)"
    assert_discreet(raised.value, port)


async def test_a_redirect_to_an_out_of_range_port_is_a_feed_error() -> None:
    """A Location whose port is out of range (httpx accepts it, urlsplit does not) is a
    FeedError like any bad hop, not a ValueError escaping the fetcher."""

    async def bad_port(request: Request) -> Response:
        return Response(
            status_code=302, headers={"Location": f"http://127.0.0.1:99999/x?s={SECRET}"}
        )

    async with serving(Starlette(routes=[Route("/feed.ics", bad_port)])) as port:
        with pytest.raises(FeedError) as raised:
            await Fetcher(allow_local=True).fetch(feed_url(port), None, None)
    assert_discreet(raised.value, port)


async def test_a_redirect_to_a_name_that_cannot_be_encoded_is_a_feed_error() -> None:
    """A Location whose host name IDNA cannot encode (an empty label) makes the system
    resolver raise UnicodeError: that too is a FeedError, not an escaping exception."""

    async def bad_name(request: Request) -> Response:
        return Response(status_code=302, headers={"Location": f"http://a..b/x?s={SECRET}"})

    async with serving(Starlette(routes=[Route("/feed.ics", bad_name)])) as port:
        with pytest.raises(FeedError) as raised:
            await Fetcher(allow_local=True).fetch(feed_url(port), None, None)
    assert_discreet(raised.value, port)


# ---- where a feed may come from -----------------------------------------------------


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address: str) -> None:
    """Loopback, private, CGNAT, link-local (metadata), unspecified, IPv6 loopback/ULA/
    link-local and IPv4-mapped forms are addresses no feed may come from."""
    assert refused(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_not_refused(address: str) -> None:
    """Public IPv4 and IPv6 addresses (and a mapped public IPv4) are allowed."""
    assert not refused(address)


@pytest.mark.parametrize("address", REFUSED)
async def test_a_name_resolving_to_an_internal_address_is_refused_before_connecting(
    address: str, sends: list[httpx.Request]
) -> None:
    """With production rules, a name whose address is internal is a FeedError before any
    connection: httpx is never asked to send, and the local server hears nothing."""

    async def listen(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)

    resolver = fixed(address)
    async with Raw(listen).running() as raw:
        url = f"https://feed.example:{raw.port}/feed.ics?s={SECRET}"
        with pytest.raises(FeedError) as raised:
            await Fetcher(allow_local=False, resolver=resolver).fetch(url, None, None)
        assert raw.connections == 0
    assert str(raised.value) == "the feed's address is not a public one"
    assert resolver.asked == [("feed.example", raw.port)]  # type: ignore[attr-defined]
    assert sends == []
    assert_discreet(raised.value, raw.port)


async def test_one_internal_address_among_public_ones_is_refused(
    sends: list[httpx.Request],
) -> None:
    """Every address a name resolves to is checked, not only the first."""
    fetcher = Fetcher(resolver=fixed("93.184.216.34", "10.0.0.5"))
    with pytest.raises(FeedError, match="not a public one"):
        await fetcher.fetch(f"https://feed.example/feed.ics?s={SECRET}", None, None)
    assert sends == []


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/feed.ics",
        "https://[::1]/feed.ics",
        "https://[::ffff:a9fe:a9fe]/latest/meta-data",
    ],
)
async def test_an_internal_address_literal_is_refused_before_connecting(
    url: str, sends: list[httpx.Request]
) -> None:
    """An address written in the URL goes through the same check (system resolver)."""
    with pytest.raises(FeedError, match="not a public one"):
        await Fetcher().fetch(url, None, None)
    assert sends == []


async def test_http_is_refused_outside_dev_even_to_a_public_address(
    sends: list[httpx.Request],
) -> None:
    """Outside dev only https is fetched: an http URL is refused before it is resolved or
    connected, whatever its address."""
    resolver = fixed("93.184.216.34")
    with pytest.raises(FeedError) as raised:
        await Fetcher(resolver=resolver).fetch(f"http://feed.example/f.ics?s={SECRET}", None, None)
    assert str(raised.value) == "the feed's URL must be https"
    assert resolver.asked == []  # type: ignore[attr-defined]
    assert sends == []
    assert SECRET not in "".join(traceback.format_exception(raised.value))


def _first_hop_redirects(monkeypatch: pytest.MonkeyPatch, location: str) -> list[httpx.Request]:
    """httpx's send answers the first request with a 302 to ``location`` and fails on any
    other: production rules need https, so the public first hop is simulated here."""
    seen: list[httpx.Request] = []

    async def send(self: httpx.AsyncClient, request: httpx.Request, **_: Any) -> httpx.Response:
        seen.append(request)
        if len(seen) > 1:
            raise AssertionError("the fetcher connected to the refused hop")
        return httpx.Response(302, headers={"Location": location}, request=request)

    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    return seen


async def test_a_redirect_to_an_internal_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each redirect hop is resolved and checked again: a public first hop redirecting to
    a name that resolves to the metadata server is refused before the second connection.
    The first hop went to the address checked, with the name kept in the Host header."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"] if host == "good.example" else ["169.254.169.254"]

    seen = _first_hop_redirects(monkeypatch, f"https://evil.example/latest?s={SECRET}")
    with pytest.raises(FeedError) as raised:
        await Fetcher(resolver=resolver).fetch(
            f"https://good.example/feed.ics?s={SECRET}", None, None
        )
    assert str(raised.value) == "the feed's address is not a public one"
    assert asked == ["good.example", "evil.example"]
    assert len(seen) == 1
    assert seen[0].url.host == "93.184.216.34"
    assert seen[0].headers["host"] == "good.example"
    assert SECRET not in "".join(traceback.format_exception(raised.value))


async def test_a_redirect_from_https_to_http_is_refused_outside_dev(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A redirect may not downgrade to http outside dev, even to a public address."""
    seen = _first_hop_redirects(monkeypatch, f"http://good.example/feed.ics?s={SECRET}")
    with pytest.raises(FeedError, match="must be https"):
        await Fetcher(resolver=fixed("93.184.216.34")).fetch(
            f"https://good.example/feed.ics?s={SECRET}", None, None
        )
    assert len(seen) == 1


async def test_each_hop_is_resolved_once_and_connected_to_the_address_checked() -> None:
    """In dev, over real servers: each hop's name is resolved once, the connection goes
    to the resolved address, and the Host header keeps the name (and port) of the URL."""
    heard: list[str] = []

    async def first(request: Request) -> Response:
        heard.append(request.headers["host"])
        location = f"http://second.test:{request.url.port}/feed.ics?s={SECRET}"
        return Response(status_code=301, headers={"Location": location})

    async def feed(request: Request) -> Response:
        heard.append(request.headers["host"])
        return Response(FEED, media_type="text/calendar")

    resolver = fixed("127.0.0.1")
    app = Starlette(routes=[Route("/first.ics", first), Route("/feed.ics", feed)])
    async with serving(app) as port:
        fetched = await Fetcher(allow_local=True, resolver=resolver).fetch(
            feed_url(port, "/first.ics", host="first.test"), None, None
        )
    assert fetched.body == FEED
    assert heard == [f"first.test:{port}", f"second.test:{port}"]
    assert resolver.asked == [("first.test", port), ("second.test", port)]  # type: ignore[attr-defined]


async def test_the_environment_proxy_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """With HTTP(S)_PROXY pointing at a dead port, a fetch still reaches the feed directly
    (trust_env=False); a client that trusted the environment would fail."""
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    async with serving(Starlette(routes=[Route("/feed.ics", _ok)])) as port:
        fetched = await Fetcher(allow_local=True).fetch(feed_url(port), None, None)
        async with httpx.AsyncClient(trust_env=True) as trusting:
            with pytest.raises(httpx.TransportError):
                await trusting.get(feed_url(port))
    assert fetched.body == FEED
