"""What a guest's WhatsApp message means: intent, stay dates, party, a chosen option.

Pure, deterministic and fast: regular expressions and arithmetic, no I/O, nothing logged
(the text is the guest's words). The text is lower-cased and stripped of accents first,
so "amanhã", "amanha" and "AMANHÃ" read alike; common abbreviations (vc, pra, p/, q, finde,
fds) are spelled out.

Dates are read as a receptionist would (today is the inn's):
- a date without a year is its next occurrence from today; a bare day ("do dia 19 ao 21")
  takes the month the message names anywhere ("em fevereiro, de 12 a 15"), else the next
  occurrence of that day, this month or the next; a check-out before its check-in day is in
  the next month ("28 ao 2");
- ranges in every form guests write: "de 10 a 12 de maio", "14-16 de abril", "14-16
  February", "April 14-16", "Dec 20 - Jan 3", "from the 3rd to the 7th of May", "entrada
  20/03 saída 23/03", "chegamos dia 7 de maio e saímos dia 14";
- weekdays are their next occurrence after today ("sexta"), in next week with "semana que
  vem"; "fim de semana"/"finde"/"weekend" is the coming Friday to Sunday; hoje, amanhã,
  depois de amanhã; nights ("3 noites a partir de sexta", "por 4 diárias", "uma semana");
- a Brazilian holiday by name (réveillon, carnaval, semana santa, Tiradentes, Corpus
  Christi, 7 de setembro, 12 de outubro, finados, 15 de novembro, natal) is a suggested stay
  (``holiday``) for the guest to confirm, never dates taken for granted.

Ask, don't guess: when the dates have two readings (an English 03/04, "15 ou 16"), are in
the past, end before they start, do not exist (31/04), contradict their weekday ("sexta dia
20" on a Saturday) or their nights, or are a window ("entre 10 e 20 de abril, umas 3
noites"), ``question`` names the doubt and no dates are read; ``choices`` holds the readings
worth offering ("15 ou 16": both; an English 05/04: day first and month first; a passed
year: the same dates a year on; "sexta dia 18" on a Thursday: the 18th or Friday the 19th).

The party: adults and children's ages apart ("2 adultos e 2 crianças de 5 e 8", "casal com
2 filhos", "eu, minha esposa e nossa filha de 6", "somos 5 pessoas, sendo 2 crianças de 4
e 6"); a child whose age is not given is ``None`` in ``children_ages``.

Intent precedence: human > cancel > a chosen option (confirm) > help > a stay (availability;
price words without a stay are a price question) > confirmation words > price > greeting >
unknown.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from app.conversations.holidays import HOLIDAY_NAMES, Holiday, holiday_stay

INTENTS = ("greeting", "availability", "price", "confirm", "cancel", "help", "human", "unknown")
MAX_CHARS = 1000  # a booking question is short; the rest of a long text is not read
# What makes the dates worth a question rather than a reading.
Question = Literal[
    "ambiguous_dates", "past_dates", "checkout_before_checkin", "no_such_date", "weekday_mismatch"
]
# A reading a question offers the guest: check-in, and check-out when the message gave one.
Choice = tuple[dt.date, dt.date | None]

_WORD_NUMBERS = {
    **dict.fromkeys(("um", "uma", "uno", "una", "un", "one", "a", "an"), 1),
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
_NUMBER = r"(\d{1,2}|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")"

_MONTH_NAMES = {
    1: "janeiro enero january jan ene",
    2: "fevereiro febrero february fev feb",
    3: "marco marzo march mar",
    4: "abril april abr apr",
    5: "maio mayo may mai",
    6: "junho junio june jun",
    7: "julho julio july jul",
    8: "agosto august ago aug",
    9: "setembro septiembre setiembre september sept set sep",
    10: "outubro octubre october oct out",
    11: "novembro noviembre november nov",
    12: "dezembro diciembre december dez dic dec",
}
_MONTH = {word: month for month, words in _MONTH_NAMES.items() for word in words.split()}
_MONTH_WORD = "|".join(sorted(_MONTH, key=len, reverse=True))
# After a day number "out" and "set" are months ("14 de out"); before one, only English
# abbreviations are ("Oct 14"), so "check-out 14/02" and "set 12" stay what they are.
_MONTH_FIRST = "|".join(
    sorted((w for w in _MONTH if w not in {"out", "set", "mar", "ene", "mai", "dez"}), key=len)[
        ::-1
    ]
)
_WEEKDAYS = {
    0: "segunda-feira segunda lunes monday mon",
    1: "terca-feira terca martes tuesday tue",
    2: "quarta-feira quarta miercoles wednesday wed",
    3: "quinta-feira quinta jueves thursday thu",
    4: "sexta-feira sexta viernes friday fri",
    5: "sabado saturday sat",
    6: "domingo sunday sun",
}
_WEEKDAY = {word: day for day, words in _WEEKDAYS.items() for word in words.split()}
_WEEKDAY_WORD = "|".join(sorted(_WEEKDAY, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th|º|°)?"
# One mention of a date; each alternative's named groups are read by _mentions(). A bare
# number is kept as a day only where a date is written (see _mentions).
_MENTION = re.compile(
    rf"(?P<numeric>\b(?P<n1>\d{{1,2}})[/.](?P<n2>\d{{1,2}})(?:[/.](?P<ny>\d{{4}}|\d{{2}}))?\b)"
    rf"|(?P<daymonth>\b(?P<dd>\d{{1,2}}){_ORD}\s+(?:de\s+|of\s+)?(?P<dm>{_MONTH_WORD})\b"
    rf"(?:,?\s+(?:de\s+|del\s+)?(?P<dy>\d{{4}}))?)"
    rf"|(?P<monthday>\b(?P<mm>{_MONTH_FIRST})\.?\s+(?P<md>\d{{1,2}}){_ORD}\b(?!\s*[/.]\d)"
    rf"(?:,?\s+(?P<my>\d{{4}}))?)"
    rf"|(?P<weekday>\b(?:{_WEEKDAY_WORD})\b)"
    rf"|(?P<relative>\b(?:depois de amanha|pasado manana|day after tomorrow|amanha|manana|"
    rf"tomorrow|hoje|hoy|today|tonight)\b)"
    rf"|(?P<bare>(?<![\d/.:])\b(?P<bd>\d{{1,2}})(?P<bo>st|nd|rd|th|º|°)?\b(?![/.:]\d))"
)
# Before a bare day, words that make it one ("dia 19", "el 5", "the 25th").
_DAY_BEFORE = re.compile(rf"\b(?:dia|el|the|on the|from the|{_WEEKDAY_WORD}),?\s*$")
# Between two ends of a range ("19 ao 21", "14 - 16", "5 al 8", "3rd to the 7th").
_RANGE_BETWEEN = re.compile(
    r"^\s*(?:a|ao|ate|ate o|ate a|al|hasta|hasta el|to|till|until|through|thru|-|e|y|and)"
    r"\s+(?:o\s+|el\s+|the\s+|dia\s+|o dia\s+)?$"
)
# After a number, words that make it something else than a day.
_NOT_A_DAY_AFTER = re.compile(
    r"^\s*(?:noites?|noches?|nights?|diarias?|dias|days|pessoas?|personas?|people|ppl|pax|"
    r"adult|crianc|filh|menin|bebe|nene|nena|nino|nina|chic|kids?|child|teen|anos|aninhos|"
    r"years|yo\b|meses|months|quartos?|rooms?|habitacion|pieza|casais|parejas|couples|"
    r"amig|friends|horas?|h\b|am\b|pm\b|%|x\b|of us|de nos|em total|en total)"
)
_WEEKEND = re.compile(r"\b(?:fim de semana|fin de semana|weekend)\b")
_NEXT_WEEK = re.compile(
    r"\b(?:semana que vem|proxima semana|semana proxima|semana que viene|next week)\b"
)
_NEXT_MONTH = re.compile(r"\b(?:mes que vem|proximo mes|mes proximo|next month)\b")
_NEXT_YEAR = re.compile(r"\b(?:ano que vem|proximo ano|ano proximo|next year)\b")
_MONTH_ALONE = re.compile(
    rf"\b(?:em|en|in|de|para|pra|pro|for|during)\s+({_MONTH_WORD})\b|^({_MONTH_WORD})\b"
)
_NIGHTS = re.compile(
    rf"\b{_NUMBER}\s*(?:noites?|noches?|nights?|diarias?|dias|days)\b"
    r"|\b(?:uma|una|a|one)\s+(semana|week)\b"
)
_ONE_NIGHT = re.compile(r"\b(?:(?:uma|una|one|a)\s+(?:noite|noche|night)|pernoite)\b")
# Doubts that no reading settles: alternatives ("15 ou 16"), or a window to choose in.
_ALTERNATIVES = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:ou|or|o)\s+(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\b"
)
_WINDOW = re.compile(
    rf"\b(?:entre|between)\s+(?:o\s+|el\s+|the\s+)?(?:dia\s+)?\d{{1,2}}{_ORD}\s+(?:e|y|and)\s+\d"
)

_ADULT_WORD = r"(?:adult[oa]s?|adults?)"
_CHILD_WORD = (
    r"(?:criancas?|filh[oa]s?|menin[oa]s?|bebes?|baby|babies|nenes?|nenas?|ninos?|ninas?|"
    r"chic[oa]s?|chiquilines?|hij[oa]s?|kids?|child(?:ren)?|sons|daughters?|toddlers?|"
    r"infants?|(?:(?<=my )|(?<=our )|(?<=one )|(?<=a )|(?<=\d ))son|"
    r"adolescentes?|teens?|teenagers?)"
)
_PEOPLE_WORD = r"(?:pessoas?|personas?|people|persons?|ppl|pax|guests?|hospedes?|huespedes?)"
_UNIT = r"(?:anos?|aninhos?|years?(?:\s+old)?|yo|y/o|meses|months?)"
_AGE = rf"(\d{{1,2}})\s*{_UNIT}?"
# Ages after a child word: "de 5 e 8 (anos)", "(3 e 10)", "ages 6 and 11", "(7, 10)".
_AGES = (
    rf"(?:\s*[,:])?\s*\(?\s*(?:de|com|of|aged|ages?|edades?|idades?|con)?\s*"
    rf"(?P<ages>\d{{1,2}}\s*{_UNIT}?(?:\s*(?:,|e|y|and|&)\s*\d{{1,2}}\s*{_UNIT}?)*)\s*\)?"
    rf"(?!\s*(?:a|ao|al|to|-)\s*\d)(?![/.]\d)"
)
_COUNTED_CHILDREN = re.compile(rf"\b{_NUMBER}\s+(?:{_CHILD_WORD})\b(?:{_AGES})?")
_CHILDREN_WITH_AGES = re.compile(
    rf"\b(?:(?:meu|minha|meus|minhas|nosso|nossa|nossos|nossas|o|a|os|as|mi|mis|nuestr[oa]s?|"
    rf"el|la|los|las|my|our|the|uma|um|una|un|a|an)\s+)?(?P<word>{_CHILD_WORD})\b(?:{_AGES})?"
)
# "uma de 3 e outra de 9": ages given one by one after a count.
_ONE_BY_ONE = re.compile(
    r"\b(?:um|uma|uno|una|one)\s+(?:de|of)\s+(\d{1,2})\s*(?:anos?)?\s*(?:e|y|and)\s+"
    r"(?:outr[oa]|otr[oa]|the other|another)\s+(?:de|of)\s+(\d{1,2})"
)
_ADULTS = re.compile(rf"\b{_NUMBER}\s*{_ADULT_WORD}\b")
_COUNT = (
    r"(\d{1,2}|dois|duas|dos|two|tres|three|quatro|cuatro|four|cinco|five|seis|six|sete|"
    r"siete|seven|oito|ocho|eight|nove|nueve|nine|dez|diez|ten)"
)
# "family of 5 with 3 children": a total that counts the children.
_FAMILY = re.compile(rf"\b(?:party of|family of|grupo de|familia de|group of)\s+{_COUNT}\b")
_TOTAL = re.compile(
    rf"\b{_NUMBER}\s*{_PEOPLE_WORD}\b"
    rf"|\b(?:somos|seremos|seriamos|sejamos|vamos|iremos|estamos)\s+(?:em\s+|en\s+)?{_COUNT}\b"
    rf"|\b(?:we are|we'?re|there are)\s+{_COUNT}\b"
    rf"|\b{_COUNT}\s+(?:of us|de nos)\b"
    rf"|\b(?:para|pra|pro|for|p)\s+{_COUNT}\b(?:\s*{_PEOPLE_WORD}\b)?"
    # … but not a day ("pra 10 a 15", "para 20 de maio") nor a count of something else
    rf"(?!\s*(?:noites?|noches?|nights?|diarias?|dias|days|de\b|/|\.\d|h\b|{_CHILD_WORD}|"
    rf"{_ADULT_WORD}|(?:a|ao|al|to|ate|-)\s+\d))"
)
# A total followed by children ("somos 2 y un bebe") counts the adults.
_TOTAL_THEN_CHILD = re.compile(rf"^\s*(?:{_PEOPLE_WORD}\s*)?(?:e|y|and|\+|mais|com|con|with)\s")
_PAIRS = re.compile(rf"\b{_NUMBER}\s+(?:casais|parejas|couples|matrimonios)\b")
_COUPLE = re.compile(r"\b(?:casal|pareja|couple|matrimonio|lua de mel|honeymoon)\b")
_ALONE = re.compile(
    r"\b(?:so eu|somente eu|apenas eu|sozinh[oa]|solo yo|yo solo|solito|just me|only me|"
    r"(?:voy|viajo|vengo|traveling|travelling|going) solo|alone|by myself)\b"
)
# Who a guest names ("eu, minha esposa e minha sogra"): each one adult, the guest once.
_SPEAKER = re.compile(r"\b(?:eu|mim|yo|me|i|myself)\b")
_RELATIVE = re.compile(
    r"\b(?:esposa|esposo|marido|mulher|namorad[oa]|noiv[oa]|mae|pai|sogr[oa]|irma|irmao|"
    r"amig[oa]|colega|tia|tio|avo|prima|primo|companheir[oa]|parceir[oa]|"
    r"senora|mujer|novi[oa]|madre|padre|hermana|hermano|"
    r"wife|husband|girlfriend|boyfriend|partner|fiance|fiancee|mom|mother|dad|father|sister|"
    r"brother|friend|colleague)\b"
)
_PARENTS = re.compile(r"\b(?:meus pais|mis padres|my parents)\b")
# "com minha mãe": whoever says "my" comes too.
_MY = re.compile(r"\b(?:meu|minha|meus|minhas|mi|mis|my)\s+\w")
_GROUP = re.compile(
    rf"\b(?:eu|mim|me|yo|mi|i)\s+(?:e|y|and|\+)\s+(?:mais\s+|otr[oa]s\s+)?{_COUNT}\s+"
    rf"(?:amig[oa]s|friends|colegas|companeros|pessoas|personas|people|others)\b"
)
# "falar com uma pessoa" asks for a person; it is no party.
_NOT_A_PARTY = re.compile(
    rf"\b(?:com|con|with|to|a)\s+(?:uma|una|a|um|un)\s+(?:{_PEOPLE_WORD}|humano|human)\b"
)

_OPTION = re.compile(
    r"\b(?:quero|prefiro|escolho|fico com|vou de|vou querer|quiero|prefiero|me quedo con|"
    r"reservame|reserva|reservar|i(?:'ll| will)? (?:take|want|choose)|i'd like|go with)\s+"
    r"(?:o|a|la|el|the)?\s*(?:opcao|opcion|option|numero|number|quarto|habitacion|room)?\s*"
    r"(?:n[o°º]\.?\s*)?(\d{1,2})\b"
    r"|\b(?:opcao|opcion|option|numero|number|n[o°º])\.?\s*(\d{1,2})\b"
    r"|^\s*(?:o|a|la|el|the)\s+(\d{1,2})\s*$"
)
_ORDINALS = {
    **dict.fromkeys(("primeiro", "primeira", "primer", "primera", "first"), 1),
    **dict.fromkeys(("segundo", "second"), 2),  # not "segunda": Monday in Portuguese
    **dict.fromkeys(("terceiro", "terceira", "tercer", "tercera", "third"), 3),
}
_ORDINAL = re.compile(r"\b(?:o|a|la|el|the)\s+(" + "|".join(_ORDINALS) + r")\b")


def _words(alternatives: str) -> re.Pattern[str]:
    """Whole words or phrases, given as one alternation ("a|b c|d")."""
    return re.compile(r"\b(?:" + alternatives + r")\b")


_HUMAN = _words(
    r"(?:falar|conversar|fala) com (?:uma|um|o|a|alguem|atendente|pessoa|humano|gente|"
    r"dono|dona|gerente|responsavel|recepcao)\w*|atendente|humano|pessoa de verdade|"
    r"alguem de verdade|passar (?:pra|para) (?:a )?(?:recepcao|atendente|alguem)|"
    r"hablar con|pasar(?:me)? con|persona real|un humano|agente|recepcion|"
    r"human|talk to|speak (?:to|with)|real person|representative|front desk|someone i can call|"
    r"me (?:ligar|ligue|liga)|ligar pra mim|por telefone|llamarme|me (?:llame|llamen)|"
    r"por telefono|call me|phone call|by phone"
)
_CONFIRM = _words(
    r"sim|si|isso|pode reservar|pode confirmar|pode fechar|pode fazer|pode ser|fechado|fechar|"
    r"confirm\w*|reservar|reservalo|ok|okay|beleza|blz|bora|dale|vale|perfeito|perfecto|claro|"
    r"yes|yeah|yep|sure|book it|go ahead|sounds good|la tomamos|lo tomamos|me quedo"
)
_STRONG_CONFIRM = _words(
    r"sim|si|yes|pode reservar|pode confirmar|reservar|book it|confirm\w*|fechado|isso|dale"
)
_PRICE = _words(
    r"valor|valores|preco|precos|quanto|qto|diaria|diarias|desconto|cuanto|precio|precios|"
    r"tarifa|tarifas|sale la noche|how much|price|prices|rate|rates|cost|costs|custa|cuesta|"
    r"paga|pagam|pagan|pay|cobra|cobram|charge"
)
_AVAILABILITY = _words(
    r"quartos?|vagas?|disponib\w*|habitacion\w*|rooms?|available|availability|vacancy|"
    r"hospedagem|estadia|reservar|reserva|book|anything free|piezas?|"
    r"(?:hay|tienen|tenes|tienes) (?:lugar|algo)"
)
_HELP = _words(
    r"ajuda|me ajuda|help|ayuda|como funciona|how does (?:this|it) work|menu|"
    r"o que (?:voce|voces) (?:consegue|pode|sabe) fazer|como (?:eu )?faco pra|"
    r"que podes hacer|que puedo hacer|que se puede hacer|opciones tengo|"
    r"what can (?:you|u) do|what kind of things|nao entendi como|"
    r"(?:sos|eres|es) un (?:bot|robot)|(?:e|voce e) um (?:bot|robo)|are (?:you|u) a (?:bot|robot)|"
    r"que (?:cosas )?(?:puedo|se puede) (?:consultar|preguntar)|o que (?:eu )?posso perguntar|"
    r"what can i ask"
)
_GREETING = _words(
    r"oi+e*|ola|bom diaa?|boa tardee?|boa noitee?|hola+|buenas\w*|buenos dias|buen dia|hi|"
    r"hello|hey|good morning|good afternoon|good evening|tudo bem|como estan|que tal"
)
_CANCEL = re.compile(r"\bcancel|\bdesist")
# "qual a política de cancelamento?" asks about cancelling; it does not cancel.
_ASKS_ABOUT = _words(r"politica|policy|regras|condicoes|condiciones|como funciona|how does")
# "ok, obrigado" closes a chat; only a word like these turns thanks into a "yes".
_THANKS = _words(r"obrigad[oa]|valeu|gracias|thanks|thank you|thx|obg")
_LEXICON_WORDS = {
    "pt": (
        "voce voces quero tem temos pessoas pessoa noites noite nao sim obrigado obrigada "
        "diaria diarias amanha ate oi ola bom boa vaga vagas quarto quartos casal crianca "
        "criancas pode qual valor do dia ao pro pra sexta sabado hoje semana partir "
        "disponibilidade ajuda atendente sozinho sozinha falar uma janeiro fevereiro marco "
        "maio junho julho setembro outubro dezembro reservar gostaria queria esposa marido "
        "filho filha vcs tudo bem feriado somos seremos gente saimos chegamos entrada saida"
    ),
    "es": (
        "ustedes usted quiero tienen tiene personas persona noches noche gracias manana "
        "habitacion habitaciones llegamos nos vamos hola buenas buenos del al viernes lunes "
        "martes miercoles jueves hoy pareja ninos nino hablar cuanto cuesta precio ayuda solo "
        "yo mi hasta disponibilidad enero febrero marzo mayo junio julio septiembre "
        "octubre noviembre diciembre reservar quisiera nenes nene tenes podes hay lugar "
        "porfa somos seriamos llegada salida queremos dale che bo finde"
    ),
    "en": (
        "hi hello do you have room rooms from to for people person guests yes please book it "
        "cancel my booking this next friday saturday sunday monday tuesday wednesday thursday "
        "tomorrow today nights night just me how much price help human talk someone couple "
        "adults children kids and the weekend want would like is there available january "
        "february march april may june july august september october november december "
        "we are we're thanks wife husband arrive leave any what can"
    ),
}
_LEXICON = {lang: frozenset(words.split()) for lang, words in _LEXICON_WORDS.items()}
_SHARED = (
    _LEXICON["pt"] & _LEXICON["es"]
    | _LEXICON["pt"] & _LEXICON["en"]
    | (_LEXICON["es"] & _LEXICON["en"])
)
_ABBREVIATIONS = {
    "vc": "voce",
    "vcs": "voces",
    "q": "que",
    "qria": "queria",
    "tb": "tambem",
    "hj": "hoje",
    "pfv": "por favor",
    "fds": "fim de semana",
    "finde": "fin de semana",
    "xq": "porque",
    "porfa": "por favor",
    "xfa": "por favor",
    "pls": "please",
    "u": "you",
    "r": "are",
    "qto": "quanto",
    "p/": "para",
    "c/": "com",
}
_ABBREVIATION = re.compile(r"(?<![\w/])\w+/?(?![\w/])")


@dataclass(frozen=True)
class Understood:
    language: str | None  # pt | es | en; None when the text carries no signal
    intent: str  # one of INTENTS
    checkin: dt.date | None
    checkout: dt.date | None
    adults: int | None
    # Each child's age in order; None for a child whose age was not said. None: no children.
    children_ages: tuple[int | None, ...] | None
    nights: int | None  # a length of stay that no check-in anchors yet
    option: int | None  # 1-based choice from the numbered list shown
    number: int | None  # the message is a bare number
    holiday: Holiday | None = None  # a stay named by a holiday: to propose, not assume
    question: Question | None = None  # why the dates need asking rather than reading
    choices: tuple[Choice, ...] = ()  # the readings to offer with the question, if any

    @property
    def guests(self) -> int | None:
        """Everyone in the party, when the message says who comes."""
        if self.adults is None and self.children_ages is None:
            return None
        return (self.adults or 0) + len(self.children_ages or ()) or None


def _normalize(text: str) -> str:
    lowered = re.sub(r"(\d)\s*[º°ª]", r"\1", text[:MAX_CHARS].lower())  # "1º de maio"
    decomposed = unicodedata.normalize("NFKD", lowered)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = re.sub(r"[\u2010-\u2015]", "-", plain)  # en and em dashes are hyphens
    plain = re.sub(r"(\d)\s*-\s*(\d)", r"\1 - \2", plain)  # "14-16" is a range, not a date
    plain = re.sub(r"[^\w/.\-'º°+:,()\s?]", " ", plain)
    plain = re.sub(r"([a-z])\1{2,}", r"\1", plain)  # "boa noiteee", "buenasss", "oiii"
    # abbreviations are whole words, punctuation around them kept ("finde?")
    plain = _ABBREVIATION.sub(lambda m: _ABBREVIATIONS.get(m.group(0), m.group(0)), plain)
    return " ".join(plain.split())


def _language(text: str, original: str) -> str | None:
    if re.search(r"[ñ¿¡]|\bsí\b", original.lower()):
        return "es"
    if re.search(r"[ãõç]", original.lower()):
        return "pt"
    tokens = re.findall(r"[a-z']+", text)
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


# ---- dates -------------------------------------------------------------------------------


@dataclass
class _Mention:
    """A date as written: what it says, and where."""

    start: int
    end: int
    day: int | None = None
    month: int | None = None
    year: int | None = None
    weekday: int | None = None
    date: dt.date | None = None  # fixed already (hoje, amanhã)
    ambiguous: bool = False  # an English 03/04


class _NoSuchDate(Exception):
    pass


def _mentions(text: str, language: str, today: dt.date) -> list[_Mention]:
    found: list[_Mention] = []
    bare: set[int] = set()  # indexes into found of bare days still to be confirmed as dates
    for match in _MENTION.finditer(text):
        kind, group = match.lastgroup, match.group
        m = _Mention(match.start(), match.end())
        if kind == "numeric":
            first, second = int(group("n1")), int(group("n2"))
            day, month = first, second
            if language == "en":
                if first <= 12 < second:
                    day, month = second, first
                elif first <= 12 and second <= 12 and first != second:
                    m.ambiguous = True  # 03/04: the question decides
            m.day, m.month = day, month
            if group("ny"):
                year = int(group("ny"))
                m.year = year + 2000 if year < 100 else year
        elif kind == "daymonth":
            m.day, m.month = int(group("dd")), _MONTH[group("dm")]
            m.year = int(group("dy")) if group("dy") else None
        elif kind == "monthday":
            m.day, m.month = int(group("md")), _MONTH[group("mm")]
            m.year = int(group("my")) if group("my") else None
        elif kind == "weekday":
            m.weekday = _WEEKDAY[group(0)]
        elif kind == "relative":
            word = group(0)
            ahead = 2 if word in ("depois de amanha", "pasado manana", "day after tomorrow") else 0
            ahead = 1 if word in ("amanha", "manana", "tomorrow") else ahead
            m.date = today + dt.timedelta(days=ahead)
        else:
            m.day = int(group("bd"))
            if not 1 <= m.day <= 31 or _NOT_A_DAY_AFTER.match(text[m.end :]):
                continue
            if not group("bo") and not _DAY_BEFORE.search(text[max(0, m.start - 16) : m.start]):
                bare.add(len(found))  # a date only as an end of a range
        found.append(m)
    # A bare number is a day when it is an end of a range whose other end is a date.
    keep = [i not in bare for i in range(len(found))]
    for _ in range(2):  # "19 ao 21": each end makes the other one a date
        for i, m in enumerate(found):
            if keep[i]:
                continue
            for j in (i - 1, i + 1):
                if 0 <= j < len(found) and (keep[j] or j in bare):
                    left, right = (found[j], m) if j < i else (m, found[j])
                    if _RANGE_BETWEEN.match(text[left.end : right.start]):
                        keep[i] = keep[j] = True
    found = [m for i, m in enumerate(found) if keep[i]]
    # "sexta dia 19": a weekday naming the same date as the day beside it is one mention.
    merged: list[_Mention] = []
    for m in found:
        prev = merged[-1] if merged else None
        between = text[prev.end : m.start] if prev is not None else ""
        filler = re.fullmatch(
            r"[\s,]*(?:(?:agora|que vem|this|next|el|the|dia|,|da|de|la|of|semana|week|"
            r"proxima|que viene)\s*)*",
            between,
        )
        if prev is not None and filler and prev.weekday is not None and prev.day is None and m.day:
            m.weekday, m.start = prev.weekday, prev.start
            merged[-1] = m
        elif prev is not None and filler and m.weekday is not None and m.day is None and prev.day:
            prev.weekday, prev.end = m.weekday, m.end
        else:
            merged.append(m)
    return merged


def _day_in(year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise _NoSuchDate from None


def _next_occurrence(month: int, day: int, after: dt.date) -> dt.date:
    for year in (after.year, after.year + 1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue
        if candidate >= after:
            return candidate
    raise _NoSuchDate


def _next_day(day: int, after: dt.date) -> dt.date:
    """A day of the month with no month: this month if still ahead, else the next one."""
    first = after.replace(day=1)
    for months_ahead in range(3):
        month = (first.month - 1 + months_ahead) % 12 + 1
        year = first.year + (first.month - 1 + months_ahead) // 12
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue
        if candidate >= after:
            return candidate
    raise _NoSuchDate


def _checkin(
    m: _Mention, today: dt.date, month: int | None, year: int | None, week: bool
) -> dt.date:
    if m.date is not None:
        return m.date
    if m.day is None:  # a weekday: its next occurrence (in next week with "semana que vem")
        assert m.weekday is not None
        base = today + dt.timedelta(days=6 - today.weekday()) if week else today
        return base + dt.timedelta(days=(m.weekday - base.weekday()) % 7 or 7)
    month = m.month or month
    if m.year is not None or (year is not None and month is not None):
        if month is None:
            raise _NoSuchDate
        return _day_in(m.year or year or today.year, month, m.day)
    if month is not None:
        return _next_occurrence(month, m.day, today)
    return _next_day(m.day, today)


def _checkout(m: _Mention, checkin: dt.date) -> dt.date:
    """The second date of a stay, after (or, when the guest wrote it so, before) check-in."""
    if m.date is not None:
        return m.date
    if m.day is None:
        assert m.weekday is not None
        return checkin + dt.timedelta(days=(m.weekday - checkin.weekday()) % 7 or 7)
    if m.month is None:  # "28 ao 2", "7 de maio e saímos dia 14": the next such day
        return _next_day(m.day, checkin + dt.timedelta(days=1))
    if m.year is not None:
        return _day_in(m.year, m.month, m.day)
    date = _day_in(checkin.year, m.month, m.day)
    if date <= checkin and m.month < checkin.month:  # "Dec 20 - Jan 3": over new year
        date = _day_in(checkin.year + 1, m.month, m.day)
    return date


@dataclass(frozen=True)
class _Stay:
    checkin: dt.date | None
    checkout: dt.date | None
    nights: int | None
    question: Question | None = None
    choices: tuple[Choice, ...] = ()  # the readings a question offers


def _context_month(text: str, mentions: list[_Mention], today: dt.date) -> int | None:
    """A month the message names for its bare days ("em fevereiro, de 12 a 15")."""
    if _NEXT_MONTH.search(text):
        return today.month % 12 + 1
    for match in _MONTH_ALONE.finditer(text):
        if not any(m.start <= match.start() < m.end for m in mentions):
            return _MONTH[match.group(1) or match.group(2)]
    return None


def _nights(text: str) -> tuple[int | None, str]:
    """A length of stay the message gives, and the text without it."""
    match = _NIGHTS.search(text)
    if match is not None:
        nights = 7 if match.group(2) else _number(match.group(1))
        return nights, text[: match.start()] + " " + text[match.end() :]
    one = _ONE_NIGHT.search(text)
    if one is not None:
        return 1, text[: one.start()] + " " + text[one.end() :]
    return None, text


def _stay(text: str, language: str, today: dt.date) -> _Stay:
    nights, text = _nights(text)
    alternatives = _ALTERNATIVES.search(text)
    if alternatives:  # "15 ou 16 de abril": each alternative is a reading to offer
        readings = [
            _stay(text[: alternatives.start()] + day + text[alternatives.end() :], language, today)
            for day in alternatives.groups()
        ]
        return _asked("ambiguous_dates", readings)
    mentions = _mentions(text, language, today)
    if not mentions:
        if _WEEKEND.search(text):  # the coming Friday (today, on a Friday) to Sunday
            friday = today + dt.timedelta(days=(4 - today.weekday()) % 7)
            return _Stay(friday, friday + dt.timedelta(days=2), None)
        return _Stay(None, None, nights)
    if _WINDOW.search(text) and nights is not None:
        return _Stay(None, None, None, "ambiguous_dates")  # "entre 10 e 20, umas 3 noites"
    if any(m.ambiguous for m in mentions):  # an English 03/04: day first, or month first
        month_first = [replace(m, day=m.month, month=m.day) if m.ambiguous else m for m in mentions]
        readings = [_resolve(text, ms, nights, today) for ms in (mentions, month_first)]
        return _asked("ambiguous_dates", readings)
    return _resolve(text, mentions, nights, today)


def _asked(question: Question, readings: list[_Stay]) -> _Stay:
    """A question offering the readings that hold up on their own."""
    choices = [
        (r.checkin, r.checkout)
        for r in readings
        if r.checkin and r.question is None and (r.checkout is None or r.checkout > r.checkin)
    ]
    return _Stay(None, None, None, question, tuple(dict.fromkeys(choices)))


def _resolve(text: str, mentions: list[_Mention], nights: int | None, today: dt.date) -> _Stay:
    """The stay the mentions name, or the question they raise."""
    first = replace(mentions[0])
    second = replace(mentions[1]) if len(mentions) > 1 else None
    if second is not None and second.month is not None and first.month is None and first.day:
        first.month, first.year = second.month, first.year or second.year  # "de 10 a 12 de maio"
    month = _context_month(text, mentions, today)
    year = today.year + 1 if _NEXT_YEAR.search(text) else None
    try:
        checkin = _checkin(first, today, month, year, bool(_NEXT_WEEK.search(text)))
        checkout = _checkout(second, checkin) if second is not None else None
    except _NoSuchDate:
        return _Stay(None, None, None, "no_such_date")
    if checkout is None and nights is not None:
        checkout, nights = checkin + dt.timedelta(days=nights), None
    for m, date in ((first, checkin), (second, checkout)):
        if m and date and m.weekday is not None and m.day and date.weekday() != m.weekday:
            # "sexta dia 18" on a Thursday: the day as numbered, or the weekday nearest it
            weekday = date + dt.timedelta(days=(m.weekday - date.weekday() + 3) % 7 - 3)
            if m is first:  # the stay moves: to the check-out's weekday, or its length kept
                readings = [_moved(d, checkin, checkout, second) for d in (date, weekday)]
            else:
                readings = [_Stay(checkin, d, None) for d in (date, weekday)]
            valid = [r for r in readings if r.checkin and r.checkin >= today]
            return _asked("weekday_mismatch", valid)
    if checkin < today:  # a year that has passed: the same dates a year on, perhaps
        later = _Stay(_year_on(checkin), _year_on(checkout) if checkout else None, None)
        return _asked("past_dates", [later] if later.checkin and later.checkin >= today else [])
    if checkout is not None and checkout <= checkin:
        return _Stay(None, None, None, "checkout_before_checkin")
    if checkout is not None and nights is not None and (checkout - checkin).days != nights:
        return _Stay(None, None, None, "ambiguous_dates")  # "3 noites, de 10 a 12 de maio"
    return _Stay(checkin, checkout, nights)


def _moved(
    day: dt.date, checkin: dt.date, checkout: dt.date | None, second: _Mention | None
) -> _Stay:
    if second is not None and second.day is None:  # "até domingo": that weekday after it
        return _Stay(day, _checkout(second, day), None)
    return _Stay(day, day + (checkout - checkin) if checkout else None, None)


def _year_on(date: dt.date) -> dt.date | None:
    try:
        return date.replace(year=date.year + 1)
    except ValueError:  # 29 February
        return None


# ---- the party -----------------------------------------------------------------------------


def _ages(raw: str | None) -> list[int | None]:
    ages: list[int | None] = []
    for match in re.finditer(_AGE, raw or ""):
        unit = match.group(0)[len(match.group(1)) :].strip()
        ages.append(0 if unit.startswith(("mes", "month")) else int(match.group(1)))
    return ages


def _blank(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]


def _children(text: str) -> tuple[list[int | None] | None, str]:
    """The children's ages (None where unsaid), and the text with them blanked out."""
    ages: list[int | None] = []
    found = False
    for match in list(_COUNTED_CHILDREN.finditer(text)):
        count = _number(match.group(1)) or 0
        said = _ages(match.group("ages"))
        rest = text[match.end() :]
        one_by_one = _ONE_BY_ONE.match(rest.lstrip(" ,:"))
        if one_by_one and not said:
            said = [int(one_by_one.group(1)), int(one_by_one.group(2))]
            text = (
                text[: match.end()]
                + " " * len(rest[: len(rest) - len(rest.lstrip(" ,:")) + one_by_one.end()])
                + rest[len(rest) - len(rest.lstrip(" ,:")) + one_by_one.end() :]
            )
        ages += said if len(said) >= count else said + [None] * (count - len(said))
        found = True
        text = _blank(text, match)
    counted = found
    for match in list(_CHILDREN_WITH_AGES.finditer(text)):
        said = _ages(match.group("ages"))
        word = match.group("word")
        # "os meninos" or "the kids" without ages, or beside a count: no new child.
        if said or not (counted or re.search(r"(?:s|ren)$", word)):
            ages += said or [None]
            found = True
        text = _blank(text, match)
    return (ages if found else None), text


def _party(text: str) -> tuple[int | None, tuple[int | None, ...] | None, str]:
    """Adults and children's ages, and the text with the party blanked out (its numbers
    are no dates)."""
    text = _NOT_A_PARTY.sub(lambda m: " " * len(m.group(0)), text)
    children, text = _children(text)
    kids = len(children) if children else 0
    ages = tuple(children) if children is not None else None
    adults: int | None = None
    said = list(_ADULTS.finditer(text))
    if said:
        adults = sum(_number(m.group(1)) or 0 for m in said)
        for m in said:
            text = _blank(text, m)
    for match in list(_PAIRS.finditer(text)):
        if not said:  # "2 parejas (4 adultos)" says it twice
            adults = (adults or 0) + 2 * (_number(match.group(1)) or 0)
        text = _blank(text, match)
    group = _GROUP.search(text)
    if adults is None and group:
        adults = 1 + (_number(group.group(1)) or 0)
        text = _blank(text, group)
    family = _FAMILY.search(text)
    if family:
        if adults is None:
            adults = max((_number(family.group(1)) or 0) - kids, 0) or None
        text = _blank(text, family)
    total = _TOTAL.search(text)
    if total:
        number = _number(next(g for g in total.groups() if g is not None)) or 0
        if adults is None:
            extra = kids and _TOTAL_THEN_CHILD.match(text[total.end() :])
            adults = number if extra or number <= kids else number - kids
        text = _blank(text, total)
    if adults is None and _COUPLE.search(text):
        adults = 2
    if adults is None:
        named = len(_RELATIVE.findall(text)) + 2 * len(_PARENTS.findall(text))
        if named and (_SPEAKER.search(text) or _MY.search(text)):
            named += 1
        if named >= 2 or (named == 1 and children):
            adults = named
    if adults is None and _ALONE.search(text):
        adults = 1
    return adults, ages, text


# ---- choices -------------------------------------------------------------------------------


def _option(text: str, room_names: Sequence[str]) -> int | None:
    match = _OPTION.search(text)
    if match:
        return int(next(g for g in match.groups() if g is not None))
    ordinal = _ORDINAL.search(text)
    if ordinal:
        return _ORDINALS[ordinal.group(1)]
    generic = {"quarto", "suite", "habitacion", "room", "vista", "com", "con", "with", "the"}
    tokens = set(re.findall(r"\w+", text))
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
    holiday_name, dated = None, normalized
    for name, pattern in HOLIDAY_NAMES:
        match = pattern.search(normalized)
        if match:  # its name, not a date of it, for the dates below ("feriado de 7 de setembro")
            holiday_name = name
            dated = normalized[: match.start()] + " " + normalized[match.end() :]
            break
    stay = _stay(_party(dated)[2], language or "pt", today)
    holiday = None
    if holiday_name is not None and stay.checkin is None and stay.question is None:
        holiday = holiday_stay(holiday_name, today)
    adults, ages, _ = _party(normalized)
    bare = re.fullmatch(r"\s*(\d{1,2})\s*[.!]?\s*", normalized)
    number = int(bare.group(1)) if bare else None
    has_stay = stay.checkin is not None or stay.question is not None or holiday is not None
    option = None if has_stay or number is not None else _option(normalized, room_names)
    if number is not None:
        adults, ages = None, None

    thanks_only = _THANKS.search(normalized) and not _STRONG_CONFIRM.search(normalized)
    if _HUMAN.search(normalized):
        intent = "human"
    elif _CANCEL.search(normalized) and not _ASKS_ABOUT.search(normalized):
        intent = "cancel"
    elif option is not None:
        intent = "confirm"
    elif _HELP.search(normalized) and not has_stay:
        intent = "help"
    elif has_stay:
        intent = "availability"
    elif _PRICE.search(normalized):
        intent = "price"
    elif _CONFIRM.search(normalized) and adults is None and not thanks_only:
        intent = "confirm"
    elif (
        adults is not None
        or ages is not None
        or _AVAILABILITY.search(normalized)
        or stay.nights is not None
    ):
        intent = "availability"
    elif _GREETING.search(normalized):
        intent = "greeting"
    else:
        intent = "unknown"
    if intent in ("human", "cancel", "confirm", "help", "greeting", "unknown"):
        adults, ages = (None, None) if intent in ("human", "cancel", "help") else (adults, ages)
    return Understood(
        language=language,
        intent=intent,
        checkin=stay.checkin,
        checkout=stay.checkout,
        adults=adults,
        children_ages=ages,
        nights=stay.nights,
        option=option,
        number=number,
        holiday=holiday,
        question=stay.question,
        choices=stay.choices,
    )
