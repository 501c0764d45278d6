"""Guest messages as guests write them, in pt-BR, es and en (today = Tue 2026-12-01)."""

from __future__ import annotations

import datetime as dt

import pytest

from app.conversations.understanding import understand

TODAY = dt.date(2026, 12, 1)
ROOMS = ["Quarto Standard", "Quarto Superior Vista Mar", "Suíte Família"]
D = dt.date.fromisoformat

# (message, checkin, checkout, guests, language or None for "no assertion", intent)
STAYS = [
    # The table.
    ("Oi, tem quarto de 10 a 12 de dezembro para 2 pessoas?", "2026-12-10", "2026-12-12", 2, "pt"),
    (
        "Boa tarde! Vocês têm vaga do dia 24/12 ao dia 27/12? Somos 3",
        "2026-12-24",
        "2026-12-27",
        3,
        "pt",
    ),
    ("quero reservar 2 noites a partir de sexta, casal", "2026-12-04", "2026-12-06", 2, "pt"),
    ("amanhã até domingo, 2 adultos e 1 criança", "2026-12-02", "2026-12-06", 3, "pt"),
    (
        "Tem disponibilidade pro réveillon? 30/12 a 02/01, 4 pessoas",
        "2026-12-30",
        "2027-01-02",
        4,
        "pt",
    ),
    ("de 15/01 a 18/01/2027, 2 adultos", "2027-01-15", "2027-01-18", 2, None),
    ("3 noites a partir de 20 de janeiro, somos 2", "2027-01-20", "2027-01-23", 2, "pt"),
    ("check-in 10/02 check-out 14/02, 2 pessoas", "2027-02-10", "2027-02-14", 2, "pt"),
    (
        "Hola, ¿tienen habitación del 5 al 8 de enero para 2 personas?",
        "2027-01-05",
        "2027-01-08",
        2,
        "es",
    ),
    (
        "Buenas, somos 4, llegamos el viernes y nos vamos el domingo",
        "2026-12-04",
        "2026-12-06",
        4,
        "es",
    ),
    (
        "Hi, do you have a room from December 18 to December 21 for 2 people?",
        "2026-12-18",
        "2026-12-21",
        2,
        "en",
    ),
    ("this Friday for 2 nights, just me", "2026-12-04", "2026-12-06", 1, "en"),
    # Our own.
    ("vcs tem vaga pra 3 pessoas de 5/1 a 8/1?", "2027-01-05", "2027-01-08", 3, "pt"),
    (
        "Quero 2 quartos... brincadeira, só eu mesmo, de 20/12 a 22/12",
        "2026-12-20",
        "2026-12-22",
        1,
        "pt",
    ),
    ("entre 3 e 5 de março, 2 adultos e 2 crianças", "2027-03-03", "2027-03-05", 4, "pt"),
    ("dia 31/12 até 02/01/2027 somos 5", "2026-12-31", "2027-01-02", 5, "pt"),
    ("este fim de semana, casal", "2026-12-04", "2026-12-06", 2, "pt"),
    ("do dia 10 ao dia 15 de fevereiro, 4 pessoas", "2027-02-10", "2027-02-15", 4, "pt"),
    ("de 28/02 a 03/03", "2027-02-28", "2027-03-03", None, None),
    ("hoje, 1 noite, só eu", "2026-12-01", "2026-12-02", 1, "pt"),
    ("1 de dezembro a 3 de dezembro para dois", "2026-12-01", "2026-12-03", 2, "pt"),
    ("depois de amanhã por 2 noites", "2026-12-03", "2026-12-05", None, "pt"),
    ("10/02/27 a 12/02/27", "2027-02-10", "2027-02-12", None, None),
    ("oi!! tem vaga 15/11 a 17/11? 2 pessoas 😊", "2027-11-15", "2027-11-17", 2, "pt"),
    (
        "BOA NOITE, QUERO RESERVAR DE 07/12 A 09/12 PARA 2 ADULTOS",
        "2026-12-07",
        "2026-12-09",
        2,
        "pt",
    ),
    ("amanha pra 2, 1 noite", "2026-12-02", "2026-12-03", 2, "pt"),
    ("tem quarto p/ 2 pessoas sábado?", "2026-12-05", None, 2, "pt"),
    ("pasado mañana, 3 noches, 2 personas", "2026-12-03", "2026-12-06", 2, "es"),
    (
        "Quiero reservar para 2 personas del 10 al 12 de diciembre",
        "2026-12-10",
        "2026-12-12",
        2,
        "es",
    ),
    ("del 24 al 26 de diciembre, somos una pareja", "2026-12-24", "2026-12-26", 2, "es"),
    ("hola, llegamos el 2/1 y nos vamos el 4/1, 3 adultos", "2027-01-02", "2027-01-04", 3, "es"),
    ("este fin de semana, 2 adultos y 2 niños", "2026-12-04", "2026-12-06", 4, "es"),
    ("mañana, dos noches, solo yo", "2026-12-02", "2026-12-04", 1, "es"),
    ("next Friday to Sunday, 2 adults and 1 child", "2026-12-04", "2026-12-06", 3, "en"),
    ("from the 3rd to the 5th of January, couple", "2027-01-03", "2027-01-05", 2, "en"),
    ("Dec 24 - Dec 26 for 4 guests", "2026-12-24", "2026-12-26", 4, "en"),
    ("12/24 to 12/27, 2 people", "2026-12-24", "2026-12-27", 2, "en"),
    ("Hi! We are 3, arriving Saturday, leaving Monday", "2026-12-05", "2026-12-07", 3, "en"),
    ("tomorrow for 3 nights, two people", "2026-12-02", "2026-12-05", 2, "en"),
    ("this weekend for a couple please", "2026-12-04", "2026-12-06", 2, "en"),
]


@pytest.mark.parametrize(("text", "checkin", "checkout", "guests", "language"), STAYS)
def test_stays(
    text: str, checkin: str, checkout: str | None, guests: int | None, language: str | None
) -> None:
    understood = understand(text, TODAY)
    assert understood.intent == "availability"
    assert understood.checkin == D(checkin)
    assert understood.checkout == (D(checkout) if checkout else None)
    assert understood.guests == guests
    if language is not None:
        assert understood.language == language


# (message, intent, language or None for "no assertion", option)
INTENTS = [
    ("qual o valor da diária?", "price", "pt", None),
    ("sim", "confirm", None, None),
    ("pode reservar", "confirm", None, None),
    ("quero o 2", "confirm", None, 2),
    ("quero cancelar", "cancel", "pt", None),
    ("quero falar com uma pessoa", "human", "pt", None),
    ("sí, reservar", "confirm", "es", None),
    ("yes please book it", "confirm", "en", None),
    ("cancel my booking", "cancel", "en", None),
    # Our own.
    ("oi", "greeting", "pt", None),
    ("Olá, boa noite!", "greeting", "pt", None),
    ("Hola buenas", "greeting", "es", None),
    ("hello there", "greeting", "en", None),
    ("quanto custa a diária pra casal?", "price", "pt", None),
    ("¿cuánto cuesta la noche?", "price", "es", None),
    ("how much per night?", "price", "en", None),
    ("ajuda", "help", "pt", None),
    ("ayuda por favor", "help", "es", None),
    ("help", "help", "en", None),
    ("quero a superior", "confirm", None, 2),
    ("a família", "confirm", None, 3),
    ("la suite familia", "confirm", None, 3),
    ("I'll take option 3", "confirm", None, 3),
    ("o primeiro", "confirm", None, 1),
    ("the second one", "confirm", "en", 2),
    ("fechado, pode reservar!", "confirm", None, None),
    ("ok", "confirm", None, None),
    ("quiero cancelar mi reserva", "cancel", "es", None),
    ("por favor cancela", "cancel", None, None),
    ("quero falar com um atendente", "human", "pt", None),
    ("hablar con una persona", "human", "es", None),
    ("can I talk to a human?", "human", "en", None),
    ("Tem vaga em janeiro?", "availability", "pt", None),
    ("obrigado!", "unknown", "pt", None),
    ("👍", "unknown", None, None),
    # Found by review: neither may cancel a hold or book a room.
    ("qual a política de cancelamento?", "unknown", "pt", None),
    ("ok obrigado", "unknown", "pt", None),
    ("sim, obrigado!", "confirm", "pt", None),
]


@pytest.mark.parametrize(("text", "intent", "language", "option"), INTENTS)
def test_intents(text: str, intent: str, language: str | None, option: int | None) -> None:
    understood = understand(text, TODAY, ROOMS)
    assert understood.intent == intent
    assert understood.option == option
    assert understood.checkin is None
    if language is not None:
        assert understood.language == language


@pytest.mark.parametrize(("text", "number"), [("2", 2), (" 3 ", 3), ("10.", 10)])
def test_a_bare_number_is_left_to_the_conversation(text: str, number: int) -> None:
    understood = understand(text, TODAY, ROOMS)
    assert (understood.number, understood.option, understood.guests) == (number, None, None)


def test_nights_without_a_checkin_wait_for_one() -> None:
    understood = understand("queremos 3 noites, 2 pessoas", TODAY)
    assert (understood.checkin, understood.nights, understood.guests) == (None, 3, 2)


def test_a_date_already_past_this_year_is_next_year() -> None:
    assert understand("de 20/11 a 22/11", TODAY).checkin == D("2027-11-20")
    assert understand("de 01/12 a 02/12", TODAY).checkin == D("2026-12-01")  # today counts


@pytest.mark.parametrize("text", ["", "   ", "🏖️" * 500, "1" * 5000, "x" * 20_000, "31/02 a 30/02"])
def test_any_text_is_understood_without_error(text: str) -> None:
    assert understand(text, TODAY).intent in {"unknown", "availability"}
