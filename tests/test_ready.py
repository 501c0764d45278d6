"""/ready reflects the database: 503 with a reason while it is unreachable, 200 again after."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.support import TcpProxy, eventually, serve_app


async def test_ready_goes_503_when_database_down_and_recovers(make_settings, db_url) -> None:  # type: ignore[no-untyped-def]
    """With the database cut off /ready answers 503 JSON (no crash, /health still 200);
    once it is reachable again /ready answers 200."""
    parts = urlsplit(db_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    from app.settings import Secret

    settings = make_settings("worker", database_url=Secret(proxied))
    async with serve_app(settings) as base, httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/ready")).status_code == 200

        await proxy.cut()
        down = await http.get("/ready")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable"
        assert down.json()["reason"] in ("database_unreachable", "database_timeout")
        assert (await http.get("/health")).status_code == 200

        await proxy.start()

        async def ready_again() -> bool:
            return (await http.get("/ready")).status_code == 200

        await eventually(ready_again)
    await proxy.cut()
