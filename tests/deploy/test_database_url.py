"""The DATABASE_URL docs/deploy.md has the operator store reaches Postgres through Cloud
Run's Cloud SQL socket, ``postgresql://USER:PASSWORD@/DB?host=/cloudsql/P:R:INSTANCE``:
the settings accept it, and asyncpg (serve, every command) and psycopg through yoyo
(migrate) both connect with it, colons in the socket's directory included."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from yoyo import get_backend

from app import db
from app.migrate import _yoyo_url, ensure_database
from app.settings import load_settings


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def cloud_sql_socket(host: str, port: int) -> AsyncIterator[Path]:
    """A directory named like Cloud Run's /cloudsql/PROJECT:REGION:INSTANCE whose Postgres
    socket leads to the test server (as the Cloud SQL connector's socket leads to Cloud SQL)."""
    # Short, under /tmp: a unix socket's path is limited to about 100 bytes.
    base = Path(tempfile.mkdtemp(prefix="csql", dir="/tmp"))
    directory = base / "hotelly-pilot:southamerica-east1:hotelly"
    directory.mkdir()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    server = await asyncio.start_unix_server(forward, path=str(directory / ".s.PGSQL.5432"))
    try:
        yield directory
    finally:
        server.close()
        await server.wait_closed()
        shutil.rmtree(base, ignore_errors=True)


async def test_the_cloud_sql_socket_url_serves_both_asyncpg_and_migrate(fresh_db_url: str) -> None:
    """Through the socket URL: migrate's first step creates the database (psycopg), yoyo
    opens its backend on it, and asyncpg queries it; load_settings takes the URL as is."""
    parts = urlsplit(fresh_db_url)
    assert parts.hostname is not None and parts.port is not None
    name = parts.path.lstrip("/")
    async with cloud_sql_socket(parts.hostname, parts.port) as directory:
        url = f"postgresql://{parts.username}:{parts.password or 'unused'}@/{name}?host={directory}"
        assert load_settings({"DATABASE_URL": url}).database_url.reveal() == url

        await asyncio.to_thread(ensure_database, url)
        backend = await asyncio.to_thread(get_backend, _yoyo_url(url))
        try:
            assert backend.connection.info.dbname == name
            assert backend.connection.info.host == str(directory)
        finally:
            backend.connection.close()
        conn = await db.connect(url)
        try:
            assert await conn.fetchval("SELECT current_database()") == name
        finally:
            await conn.close()
