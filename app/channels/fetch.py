"""Fetching a channel's feed without letting its URL reach anything it must not.

The URL comes from the inn's property file and carries the channel's secret. Rules:

- ``https`` only (``http`` too when ``allow_local``, i.e. ENV=dev);
- the host name is resolved once, every address is checked, and the connection goes to
  the checked address (TLS still verifies the name): no second lookup to rebind;
- refused, unless ``allow_local``: loopback, private, link-local (the metadata server),
  multicast, reserved and unspecified addresses, 0.0.0.0/8, 100.64.0.0/10, IPv6
  loopback/ULA/link-local, and IPv4-mapped or -translated forms of all of these;
- at most MAX_REDIRECTS redirects, each hop checked the same way; no proxy from the
  environment (``trust_env=False``);
- connect and read timeouts, at most MAX_BYTES of body;
- a conditional GET (``If-None-Match``/``If-Modified-Since``) from the last success.

Failures are ``FeedError`` with a reason that never holds the URL (it is a secret).
The resolver is injectable, so a test can run these rules against local servers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

MAX_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 3
# A feed is a small file: a channel that takes longer is down, and the next sync retries.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "Hotelly-Calendar-Sync/1.0"

Resolver = Callable[[str, int], Awaitable[list[str]]]

_FORBIDDEN = [
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "64:ff9b::/96",
        "fec0::/10",  # site-local, deprecated but still routed in places
    )
]


class FeedError(Exception):
    """The feed could not be had; ``str()`` says why, never where."""


@dataclass(frozen=True)
class Fetched:
    body: bytes | None  # None: not modified since the last success
    etag: str | None
    last_modified: str | None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def refused(address: str) -> bool:
    """An address no feed may be fetched from."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return refused(str(ip.ipv4_mapped))
        # The IPv4 address a 6to4 or Teredo address tunnels to.
        inner = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None and refused(str(inner)):
            return True
    return (
        any(ip in net for net in _FORBIDDEN)
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


@dataclass(frozen=True)
class Fetcher:
    allow_local: bool = False  # ENV=dev: http, and servers on this machine or network
    resolver: Resolver = system_resolver

    async def _address(self, host: str, port: int) -> str:
        try:
            addresses = await self.resolver(host, port)
        except (OSError, UnicodeError):  # a name that cannot even be encoded resolves nothing
            raise FeedError("the feed's host name does not resolve") from None
        if not addresses:
            raise FeedError("the feed's host name does not resolve")
        if not self.allow_local and any(refused(a) for a in addresses):
            raise FeedError("the feed's address is not a public one")
        return addresses[0]

    async def fetch(self, url: str, etag: str | None, last_modified: str | None) -> Fetched:
        headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with httpx.AsyncClient(
            timeout=TIMEOUT, follow_redirects=False, trust_env=False
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                answer = await self._get(client, url, headers)
                if answer.status in (301, 302, 303, 307, 308):
                    location = answer.headers.get("location")
                    if not location:
                        raise FeedError("the feed redirects nowhere")
                    try:
                        url = urljoin(url, location)  # checked like the first hop
                    except ValueError:
                        raise FeedError("the feed redirects to an invalid URL") from None
                    continue
                if answer.status == 304:
                    return Fetched(None, etag, last_modified)
                if answer.status != 200 or answer.body is None:
                    raise FeedError(f"the feed answered HTTP {answer.status}")
                return Fetched(
                    answer.body,
                    answer.headers.get("etag"),
                    answer.headers.get("last-modified"),
                )
            raise FeedError("the feed redirects too many times")

    async def _get(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> _Answer:
        try:
            parts = urlsplit(url)
            explicit_port = parts.port
        except ValueError:  # e.g. a port out of range
            raise FeedError("the feed's URL is not valid") from None
        schemes = ("https", "http") if self.allow_local else ("https",)
        if parts.scheme not in schemes or not parts.hostname:
            raise FeedError("the feed's URL must be https")
        port = explicit_port or (443 if parts.scheme == "https" else 80)
        address = await self._address(parts.hostname, port)
        # Connect to the address just checked; the Host header and TLS keep the name.
        host = f"[{address}]" if ":" in address else address
        pinned = parts._replace(netloc=f"{host}:{port}").geturl()
        request = client.build_request(
            "GET",
            pinned,
            headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]},
            extensions={"sni_hostname": parts.hostname},
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException:
            raise FeedError("the feed timed out") from None
        except httpx.HTTPError as exc:
            raise FeedError(f"the feed could not be fetched ({type(exc).__name__})") from None
        try:
            body = await _capped(response) if response.status_code == 200 else None
        finally:
            await response.aclose()
        return _Answer(response.status_code, response.headers, body)


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes | None


async def _capped(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BYTES:
        raise FeedError("the feed is larger than 2 MiB")
    chunks, size = [], 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BYTES:
                raise FeedError("the feed is larger than 2 MiB")
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise FeedError("the feed timed out") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"the feed could not be read ({type(exc).__name__})") from None
    return b"".join(chunks)
