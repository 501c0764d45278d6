"""What a guest's WhatsApp message means: intent, stay dates, guests, a chosen option.

Pure and fast: no I/O, nothing logged (the text is the guest's words). The text is
lower-cased and stripped of accents first, so "amanhã", "amanha" and "AMANHÃ" read alike.

Dates: regular expressions only *find* date fragments and the range around them ("de 10 a
12 de dezembro", "del 5 al 8 de enero", "check-in 10/02 check-out 14/02"); dateparser turns
each fragment ("12 de dezembro", "24/12", "December 18", "sexta", "mañana") into a date, in
the message's language and date order (dd/mm for pt and es; mm/dd for en only when
unambiguous). A date without a year is its next occurrence from today; a check-out
without a year that would fall on or before the check-in is in the next year.

Intent precedence: human > cancel > a chosen option (confirm) > dates or nights
(availability) > confirmation words without a guest count > price > a guest count or
availability words > help > greeting > unknown. So "quero reservar 2 noites a partir de
sexta" is an availability question, and "sim" alone a confirmation.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import dateparser

INTENTS = ("greeting", "availability", "price", "confirm", "cancel", "help", "human", "unknown")
MAX_CHARS = 1000  # a booking question is short; the rest of a long text is not read

_WORD_NUMBERS = {
    **dict.fromkeys(("um", "uma", "uno", "una", "one"), 1),
    **dict.fromkeys(("dois", "duas", "dos", "two"), 2),
    **dict.fromkeys(("tres", "three"), 3),
    **dict.fromkeys(("quatro", "cuatro", "four"), 4),
    **dict.fromkeys(("cinco", "five"), 5),
    **dict.fromkeys(("seis", "six"), 6),
    **dict.fromkeys(("sete", "siete", "seven"), 7),
    **dict.fromkeys(("oito", "ocho", "eight"), 8),
    **dict.fromkeys(("nove", "nueve", "nine"), 9),
    **dict.fromkeys(("dez", "diez", "ten"), 10),
}
_NUM = r"(\d{1,2}|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")"

_MONTHS = (
    "janeiro|fevereiro|marco|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro|"
    "enero|febrero|marzo|mayo|junio|julio|septiembre|setiembre|octubre|noviembre|diciembre|"
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|fev|feb|mar|abr|apr|mai|jun|jul|ago|aug|set|sep|sept|out|oct|nov|dez|dic|dec|ene"
)
# Before a day number ("December 18", "Dec 18") only English abbreviations: "out 14" is
# "check-out 14/02", not October.
_MONTHS_FIRST = _MONTHS.split("|jan|")[0] + "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
_RELATIVE = (
    "depois de amanha|pasado manana|day after tomorrow|amanha|manana|tomorrow|hoje|hoy|today|"
    "segunda-feira|terca-feira|quarta-feira|quinta-feira|sexta-feira|segunda|terca|quarta|"
    "quinta|sexta|sabado|domingo|lunes|martes|miercoles|jueves|viernes|"
    "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
)
_ORD = r"(?:st|nd|rd|th|o|º)?"
_DATE = re.compile(
    rf"(?P<num>\b\d{{1,2}}[/.-]\d{{1,2}}(?:[/.-](?:\d{{4}}|\d{{2}}))?\b)"
    rf"|(?P<daymonth>\b\d{{1,2}}{_ORD}\s+(?:de\s+|of\s+)?(?:{_MONTHS})\b(?:,?\s+(?:de\s+)?\d{{4}})?)"
    rf"|(?P<monthday>\b(?:{_MONTHS_FIRST})\s+\d{{1,2}}{_ORD}\b(?![/.-]\d)(?:,?\s+\d{{4}})?)"
    rf"|(?P<weekend>\b(?:fim de semana|fin de semana|weekend)\b)"
    rf"|(?P<relative>\b(?:{_RELATIVE})\b)"
    # A bare day opening a range whose other end names the month: "de 10 a 12 de dezembro".
    rf"|(?P<bareday>\b\d{{1,2}}{_ORD}(?=\s+(?:a|ao|al|to|ate|hasta|e|y|and|-)\s+"
    rf"(?:o\s+|el\s+|the\s+)?(?:dia\s+)?\d))"
)
_DAY_AFTER_TOMORROW = {"depois de amanha", "pasado manana", "day after tomorrow"}
_YEAR = re.compile(r"\d{4}\b|\d{1,2}[/.-]\d{1,2}[/.-]\d{2}$")
_NIGHTS = re.compile(rf"\b{_NUM}\s*(?:noites?|noches?|nights?|diarias?)\b")
_ADULTS = re.compile(rf"\b{_NUM}\s*(?:adult[oa]s?|adults?)\b")
_CHILDREN = re.compile(
    rf"\b{_NUM}\s*(?:criancas?|ninos?|ninas?|children|child|kids?|bebes?|babies|baby)\b"
)
_PEOPLE = re.compile(
    rf"\b{_NUM}\s*(?:pessoas?|personas?|people|persons?|guests?|hospedes?|huespedes?|pax)\b"
    rf"|\b(?:somos|we are|we're)\s+{_NUM}\b"
    rf"|\b(?:para|pra|for)\s+{_NUM}\b(?!\s*(?:noites?|noches?|nights?))"
)
_COUPLE = re.compile(r"\b(?:casal|pareja|couple|my (?:wife|husband|partner) and i)\b")
_ALONE = re.compile(r"\b(?:so eu|somente eu|sozinh[oa]|solo yo|yo solo|just me|only me|alone)\b")
_OPTION = re.compile(
    r"\b(?:quero|prefiro|escolho|fico com|vou de|quiero|prefiero|me quedo con|"
    r"i(?:'ll| will)? (?:take|want|choose)|i'd like)\s+(?:o|a|la|el|the)?\s*"
    r"(?:opcao|opcion|option|numero|number|quarto|habitacion|room)?\s*(?:n[o°º]\.?\s*)?(\d{1,2})\b"
    r"|\b(?:opcao|opcion|option|numero|number|n[o°º])\.?\s*(\d{1,2})\b"
    r"|^\s*(?:o|a|la|el|the)\s+(\d{1,2})\s*$"
)
_ORDINALS = {
    **dict.fromkeys(("primeiro", "primeira", "primera", "first"), 1),
    **dict.fromkeys(("segundo", "second"), 2),  # not "segunda": Monday in Portuguese
    **dict.fromkeys(("terceiro", "terceira", "tercera", "third"), 3),
}
_ORDINAL = re.compile(r"\b(?:o|a|la|el|the)\s+(" + "|".join(_ORDINALS) + r")\b")


def _words(alternatives: str) -> re.Pattern[str]:
    """Whole words or phrases, given as one alternation ("a|b c|d")."""
    return re.compile(r"\b(?:" + alternatives + r")\b")


_HUMAN = _words(
    r"(?:falar|conversar) com (?:uma|um|alguem|atendente|pessoa|humano)|atendente|humano|"
    r"hablar con|persona real|agente|human|talk to|speak (?:to|with)|real person|"
    r"representative|someone"
)
_CONFIRM = _words(
    r"sim|si|pode reservar|pode fechar|pode ser|fechado|fechar|confirm\w*|reservar|reserva|"
    r"reservalo|ok|okay|beleza|bora|dale|vale|perfeito|perfecto|claro|yes|yeah|yep|sure|"
    r"book it|go ahead"
)
_PRICE = _words(
    r"valor|valores|preco|precos|quanto|diaria|diarias|cuanto|precio|precios|tarifa|"
    r"tarifas|how much|price|prices|rate|rates|cost"
)
_AVAILABILITY = _words(
    r"quartos?|vagas?|disponib\w*|habitacion\w*|rooms?|available|availability|hospedagem|"
    r"estadia|reservar|reserva|book"
)
_HELP = _words(r"ajuda|help|ayuda|como funciona|how does|menu")
_GREETING = _words(
    r"oi|ola|bom dia|boa tarde|boa noite|hola|buenas|buenos dias|hi|hello|hey|good morning|"
    r"good afternoon|good evening"
)
_CANCEL = re.compile(r"\bcancel")
# "qual a política de cancelamento?" asks about cancelling; it does not cancel.
_ASKS_ABOUT = _words(r"politica|policy|regras|condicoes|condiciones|como funciona|how does")
# "ok, obrigado" closes a chat; only a word like these turns thanks into a "yes".
_THANKS = _words(r"obrigad[oa]|valeu|gracias|thanks|thank you")
_STRONG_CONFIRM = _words(r"sim|si|yes|pode reservar|reservar|book it|confirm\w*|fechado")
_LEXICON_WORDS = {
    "pt": (
        "voce voces vc vcs quero tem temos pessoas pessoa noites noite nao sim obrigado "
        "obrigada diaria diarias amanha ate oi ola bom boa vaga vagas quarto quartos casal "
        "crianca criancas pode qual valor do dia ao pro pra sexta sabado hoje semana partir "
        "disponibilidade ajuda atendente sozinho sozinha falar uma janeiro fevereiro marco "
        "maio junho julho setembro outubro dezembro reservar gostaria"
    ),
    "es": (
        "ustedes usted quiero tienen tiene personas persona noches noche gracias manana "
        "habitacion habitaciones llegamos nos vamos hola buenas buenos del al viernes lunes "
        "martes miercoles jueves hoy pareja ninos nino hablar cuanto cuesta precio ayuda solo "
        "yo mi hasta disponibilidad enero febrero marzo mayo junio julio septiembre "
        "octubre noviembre diciembre reservar quisiera"
    ),
    "en": (
        "hi hello do you have room rooms from to for people person guests yes please book it "
        "cancel my booking this next friday saturday sunday monday tuesday wednesday thursday "
        "tomorrow today nights night just me how much price help human talk someone couple "
        "adults children kids and the weekend want would like is there available january "
        "february march april may june july august september october november december"
    ),
}
_LEXICON = {lang: frozenset(words.split()) for lang, words in _LEXICON_WORDS.items()}
_SHARED = (
    _LEXICON["pt"] & _LEXICON["es"]
    | _LEXICON["pt"] & _LEXICON["en"]
    | (_LEXICON["es"] & _LEXICON["en"])
)
_ABBREVIATIONS = {"vc": "voce", "vcs": "voces", "q": "que", "tb": "tambem", "hj": "hoje"}


@dataclass(frozen=True)
class Understood:
    language: str | None  # pt | es | en; None when the text carries no signal
    intent: str  # one of INTENTS
    checkin: dt.date | None
    checkout: dt.date | None
    guests: int | None
    nights: int | None  # a length of stay that no check-in anchors yet
    option: int | None  # 1-based choice from the numbered list shown
    number: int | None  # the message is a bare number


def _normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text[:MAX_CHARS].lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = re.sub(r"[^\w/.\-'º°\s]", " ", plain)
    words = [_ABBREVIATIONS.get(word, word) for word in plain.split()]
    return " ".join(words)


def _language(text: str, original: str) -> str | None:
    if re.search(r"[ñ¿¡]|\bsí\b", original.lower()):
        return "es"
    if re.search(r"[ãõç]", original.lower()):
        return "pt"
    tokens = re.findall(r"[a-z]+", text)
    scores = {
        lang: sum(1 for t in tokens if t in words and t not in _SHARED)
        for lang, words in _LEXICON.items()
    }
    best = max(scores, key=lambda lang: scores[lang])
    ranked = sorted(scores.values(), reverse=True)
    return best if ranked[0] > 0 and ranked[0] > ranked[1] else None


def _number(raw: str | None) -> int | None:
    if raw is None:
        return None
    return int(raw) if raw.isdigit() else _WORD_NUMBERS.get(raw)


def _next_occurrence(month: int, day: int, after: dt.date) -> dt.date | None:
    for year in (after.year, after.year + 1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:  # 29/02 in a common year, 31/04, …
            continue
        if candidate >= after:
            return candidate
    return None


def _parse(fragment: str, language: str, today: dt.date, order: str) -> dt.date | None:
    parsed = dateparser.parse(
        fragment,
        languages=[language],
        settings={
            "DATE_ORDER": order,
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": dt.datetime.combine(today, dt.time(12)),
            "STRICT_PARSING": False,
        },
    )
    return parsed.date() if parsed is not None else None


def _dates(text: str, language: str, today: dt.date) -> tuple[list[dt.date], str]:
    """The dates in order of appearance, and the text with them blanked out."""
    found: list[tuple[str, str]] = []  # (kind, fragment)
    for match in _DATE.finditer(text):
        kind = match.lastgroup or ""
        found.append((kind, match.group(0)))
    blanked = _DATE.sub(" ", text)
    dates: list[dt.date | None] = []
    explicit_year: list[bool] = []
    for kind, fragment in found:
        if kind == "weekend":
            friday = today + dt.timedelta(days=(4 - today.weekday()) % 7 or 7)
            dates += [friday, friday + dt.timedelta(days=2)]
            explicit_year += [True, True]
            continue
        if fragment in _DAY_AFTER_TOMORROW:  # dateparser reads none of the three
            dates.append(today + dt.timedelta(days=2))
            explicit_year.append(True)
            continue
        if kind == "bareday":
            dates.append(None)  # its month comes from the range's other end
            explicit_year.append(False)
            continue
        order = "MDY"
        if kind == "num":
            first, second = (int(p) for p in re.split(r"[/.-]", fragment)[:2])
            order = "MDY" if language == "en" and second > 12 >= first else "DMY"
        parsed = _parse(fragment, language, today, order)
        has_year = bool(_YEAR.search(fragment)) or kind == "relative"
        if parsed is not None and not has_year:
            parsed = _next_occurrence(parsed.month, parsed.day, today)
        dates.append(parsed)
        explicit_year.append(has_year)
    for i, date in enumerate(dates):
        if date is None and i + 1 < len(dates) and dates[i + 1] is not None:
            end = dates[i + 1]
            assert end is not None
            day = int(re.match(r"\d+", found[i][1]).group(0))  # type: ignore[union-attr]
            try:
                start = end.replace(day=day)
            except ValueError:
                continue
            if start > end:  # "de 28 a 2 de janeiro": the start is in the month before
                start = (end.replace(day=1) - dt.timedelta(days=1)).replace(day=min(day, 28))
            dates[i] = start
    result = [(d, year) for d, year in zip(dates, explicit_year, strict=True) if d is not None]
    if len(result) >= 2 and result[1][0] <= result[0][0] and not result[1][1]:
        rolled = _next_occurrence(result[1][0].month, result[1][0].day, result[0][0])
        if rolled is not None and rolled > result[0][0]:
            result[1] = (rolled, False)
    return [d for d, _ in result], blanked


def _guests(text: str) -> int | None:
    adults = [_number(m.group(1)) or 0 for m in _ADULTS.finditer(text)]
    children = [_number(m.group(1)) or 0 for m in _CHILDREN.finditer(text)]
    if adults or children:
        return sum(adults) + sum(children) or None
    if _COUPLE.search(text):  # before "somos uma/una …": "somos una pareja"
        return 2
    people = _PEOPLE.search(text)
    if people:
        return _number(next(g for g in people.groups() if g is not None))
    if _ALONE.search(text):
        return 1
    return None


def _option(text: str, room_names: Sequence[str]) -> int | None:
    match = _OPTION.search(text)
    if match:
        return int(next(g for g in match.groups() if g is not None))
    ordinal = _ORDINAL.search(text)
    if ordinal:
        return _ORDINALS[ordinal.group(1)]
    generic = {"quarto", "suite", "habitacion", "room", "vista", "com", "con", "with", "the"}
    tokens = set(text.split())
    best, hits = None, 0
    for index, name in enumerate(room_names, start=1):
        distinctive = {w for w in _normalize(name).split() if len(w) >= 3 and w not in generic}
        count = len(distinctive & tokens)
        if count > hits:
            best, hits = index, count
    return best


def understand(text: str, today: dt.date, room_names: Sequence[str] = ()) -> Understood:
    normalized = _normalize(text)
    language = _language(normalized, text[:MAX_CHARS])
    dates, rest = _dates(normalized, language or "pt", today)
    nights_match = _NIGHTS.search(rest)
    nights = _number(nights_match.group(1)) if nights_match else None
    if nights_match:
        rest = rest[: nights_match.start()] + " " + rest[nights_match.end() :]
    guests = _guests(rest)
    bare = re.fullmatch(r"\s*(\d{1,2})\s*[.!]?\s*", normalized)
    number = int(bare.group(1)) if bare else None
    option = None if dates or number is not None else _option(rest, room_names)

    checkin = dates[0] if dates else None
    checkout = dates[1] if len(dates) > 1 else None
    if checkin is not None and checkout is None and nights:
        checkout, nights = checkin + dt.timedelta(days=nights), None

    if _HUMAN.search(normalized):
        intent = "human"
    elif _CANCEL.search(normalized) and not _ASKS_ABOUT.search(normalized):
        intent = "cancel"
    elif option is not None:
        intent = "confirm"
    elif dates or nights:
        intent = "availability"
    elif (
        _CONFIRM.search(normalized)
        and guests is None
        and not (_THANKS.search(normalized) and not _STRONG_CONFIRM.search(normalized))
        and not _CANCEL.search(normalized)
    ):
        intent = "confirm"
    elif _PRICE.search(normalized):
        intent = "price"
    elif guests or _AVAILABILITY.search(normalized):
        intent = "availability"
    elif _HELP.search(normalized):
        intent = "help"
    elif _GREETING.search(normalized):
        intent = "greeting"
    else:
        intent = "unknown"
    return Understood(language, intent, checkin, checkout, guests, nights, option, number)
