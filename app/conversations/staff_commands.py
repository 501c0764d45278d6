"""What a registered staff member writes to the inn's number: "#bot [conversa]" hands a
conversation back to the bot."""

from __future__ import annotations

from app.conversations import store
from app.conversations.model import Conversation, Services, Turn
from app.conversations.staff_notices import STAFF_LANGUAGE, ref
from app.db import QUERIES

TEMPLATES = {
    "released": "Pronto: o robô voltou a atender a conversa {ref}.",
    "nothing_to_release": "Nenhuma conversa aguardando atendimento.",
    "commands": "Comandos: #bot [conversa] devolve uma conversa ao robô.",
}


async def staff_command(services: Services, staff: Conversation, text: str) -> Turn:
    turn = Turn(STAFF_LANGUAGE, staff.state, staff.context)
    words = text.strip().split()
    if not words or words[0].lower() != "#bot":
        turn.replies.append(TEMPLATES["commands"])
        return turn
    wanted = words[1].lower()[:36] if len(words) > 1 else ""
    async with services.pool.acquire() as conn:
        target = await conn.fetchval(QUERIES["handed_off"], staff.property.id, wanted)
    if target is None:
        turn.replies.append(TEMPLATES["nothing_to_release"])
        return turn
    # The guest's own task may be running: take its lease, as any turn does.
    async with store.leased(services.pool, target), services.pool.acquire() as conn:
        await conn.execute(QUERIES["release_to_bot"], target)
    turn.replies.append(TEMPLATES["released"].format(ref=ref(target)))
    return turn
