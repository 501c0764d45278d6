"""What the lifespan hands every request: settings and the pool."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from starlette.requests import Request

from app.settings import Settings


@dataclass(frozen=True)
class Deps:
    settings: Settings
    pool: asyncpg.Pool


def deps(request: Request) -> Deps:
    return request.state.deps
