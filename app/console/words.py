"""The console's words in Spanish and English, keyed by the Portuguese the templates are
written in (``{{ _("Chegadas") }}``); Portuguese first: a word missing here shows in it."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("pt", "es", "en")

# Portuguese → (Spanish, English).
WORDS: dict[str, tuple[str, str]] = {
    "Aguardando pagamento": ("Esperando el pago", "Awaiting payment"),
    "Alteração": ("Cambio", "Change"),
    "Aplicando…": ("Aplicando…", "Applying…"),
    "Até (saída)": ("Hasta (salida)", "To (check-out)"),
    "Bloquear": ("Bloquear", "Block"),
    "Buscar": ("Buscar", "Search"),
    "Calendário": ("Calendario", "Calendar"),
    "Canais": ("Canales", "Channels"),
    "Cancelar": ("Cancelar", "Cancel"),
    "Cancelar a reserva": ("Cancelar la reserva", "Cancel the booking"),
    "Chegadas": ("Llegadas", "Arrivals"),
    "Conflitos com canais": ("Conflictos con canales", "Channel conflicts"),
    "Conversa": ("Conversación", "Conversation"),
    "Conversas": ("Conversaciones", "Conversations"),
    "Conversas com a equipe": ("Conversaciones con el equipo", "Conversations with the staff"),
    "Conversas esperando alguém": ("Conversaciones esperando a alguien", "Waiting for a person"),
    "Código": ("Código", "Code"),
    "Código incorreto ou vencido. Peça um novo se precisar.": (
        "Código incorrecto o vencido. Pida uno nuevo si lo necesita.",
        "Wrong or expired code. Ask for a new one if you need to.",
    ),
    "Código ou nome": ("Código o nombre", "Code or name"),
    "De": ("Desde", "From"),
    "Desbloquear": ("Desbloquear", "Unblock"),
    "Detalhes": ("Detalles", "Details"),
    "Devolver ao robô": ("Devolver al robot", "Hand back to the bot"),
    "Diária (R$)": ("Tarifa (R$)", "Nightly rate (R$)"),
    "Endereço para exportar": ("Dirección para exportar", "Export address"),
    "Entrar": ("Entrar", "Log in"),
    "Erro": ("Error", "Error"),
    "Esse número não parece válido. Escreva com o DDD.": (
        "Ese número no parece válido. Escríbalo con el código de área.",
        "That number doesn't look valid. Write it with the area code.",
    ),
    "Esta página se atualiza sozinha.": (
        "Esta página se actualiza sola.",
        "This page refreshes by itself.",
    ),
    "Estadia": ("Estadía", "Stay"),
    "Feito": ("Hecho", "Done"),
    "Formulário vencido: recarregue a página": (
        "Formulario vencido: recargue la página",
        "Stale form: reload the page",
    ),
    "Hoje": ("Hoy", "Today"),
    "Hospedado em": ("Hospedado el", "Staying on"),
    "Hospedados": ("Hospedados", "In house"),
    "Hósp.": ("Huésp.", "Guests"),
    "Hóspede": ("Huésped", "Guest"),
    "Hóspede sem nome": ("Huésped sin nombre", "Guest without a name"),
    "Importação: última tentativa": ("Importación: último intento", "Import: last attempt"),
    "Mais antigas": ("Más antiguas", "Older"),
    "Mudar preço / mínimo": ("Cambiar precio / mínimo", "Change rate / minimum"),
    "Mudar um período": ("Cambiar un período", "Change a range"),
    "Mín. noites": ("Mín. noches", "Min. nights"),
    "Nenhum calendário de canal.": ("Ningún calendario de canal.", "No channel calendar."),
    "Nenhum.": ("Ninguno.", "None."),
    "Nenhuma conversa com a equipe agora.": (
        "Ninguna conversación con el equipo ahora.",
        "No conversation with the staff now.",
    ),
    "Nenhuma reserva encontrada.": ("Ninguna reserva encontrada.", "No booking found."),
    "Nenhuma.": ("Ninguna.", "None."),
    "Não foi possível": ("No fue posible", "Could not be done"),
    "Painel": ("Panel", "Console"),
    "Painel da pousada": ("Panel de la posada", "The inn's console"),
    "Pedir outro código": ("Pedir otro código", "Ask for another code"),
    "Pela política, o reembolso agora é de": (
        "Según la política, el reembolso ahora es de",
        "By the policy, the refund now is",
    ),
    "Pousada": ("Posada", "Inn"),
    "Página não encontrada": ("Página no encontrada", "Page not found"),
    "Quarto": ("Habitación", "Room"),
    "Receber código": ("Recibir código", "Get a code"),
    "Reembolsos": ("Reembolsos", "Refunds"),
    "Reserva": ("Reserva", "Booking"),
    "Reservas": ("Reservas", "Bookings"),
    "Sair": ("Salir", "Log out"),
    "Saídas": ("Salidas", "Departures"),
    "Se este número for da equipe, enviamos um código de 6 dígitos pelo WhatsApp da pousada. "
    "Ele vale por 10 minutos.": (
        "Si este número es del equipo, enviamos un código de 6 dígitos por el WhatsApp de la "
        "posada. Vale por 10 minutos.",
        "If this number is the staff's, we sent a 6-digit code through the inn's WhatsApp. "
        "It is valid for 10 minutes.",
    ),
    "Seu número de WhatsApp": ("Su número de WhatsApp", "Your WhatsApp number"),
    "Situação": ("Estado", "Status"),
    "Só exporta.": ("Solo exporta.", "Export only."),
    "Toque uma noite e depois a última: o período vai para o formulário.": (
        "Toque una noche y luego la última: el período pasa al formulario.",
        "Tap a night, then the last one: the range goes into the form.",
    ),
    "Total": ("Total", "Total"),
    "Unidades": ("Unidades", "Units"),
    "Voltar ao painel": ("Volver al panel", "Back to the console"),
    "até": ("hasta", "until"),
    "cancelada": ("cancelada", "cancelled"),
    "confirmada": ("confirmada", "confirmed"),
    "conflito(s) com reservas.": ("conflicto(s) con reservas.", "conflict(s) with bookings."),
    "desde": ("desde", "since"),
    "dias": ("días", "days"),
    "eventos": ("eventos", "events"),
    "hósp.": ("huésp.", "guests"),
    "livres · preço": ("libres · precio", "free · rate"),
    "nunca": ("nunca", "never"),
    "pagamento": ("pago", "payment"),
    "seguidas": ("seguidas", "in a row"),
    "último sucesso": ("último éxito", "last success"),
}


def language(asked: str | None, accept: str | None) -> str:
    """``?lang=`` when it is one of ours, else the first of ours the browser accepts."""
    if asked in LANGUAGES:
        return asked
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "pt"


def translator(lang: str) -> Callable[[str], str]:
    if lang == "pt":
        return lambda text: text
    column = LANGUAGES.index(lang) - 1
    return lambda text: WORDS[text][column] if text in WORDS else text
