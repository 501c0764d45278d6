"""The conversation's states are one list: the engine's Literal and the table's CHECK."""

from __future__ import annotations

import re

import asyncpg

from app.conversations.model import STATES


async def test_the_state_check_admits_exactly_the_engines_states(
    conn: asyncpg.Connection,
) -> None:
    """conversations_state_check lists the same states as model.State, no more, no fewer."""
    definition = await conn.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conname = 'conversations_state_check'"
    )
    assert set(re.findall(r"'(\w+)'", definition)) == set(STATES)
