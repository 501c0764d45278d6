"""What the bot says, in the guest's language (pt-BR, es, en).

Every reply is a template with named fields; ``render`` fills it. A count that meets a noun
is written ``{nights:night}`` and comes out as "1 noite" or "3 noites", in the reply's
language. Money is integer cents, shown in the inn's currency with the language's separators.
"""

from __future__ import annotations

import datetime as dt
import string

LANGUAGES = ("pt", "es", "en")
DEFAULT_LANGUAGE = "pt"

TEMPLATES: dict[str, dict[str, str]] = {
    "greeting": {
        "pt": "Olá! Aqui é o atendimento da {inn}. Para quais datas e quantas pessoas você "
        "gostaria de reservar?",
        "es": "¡Hola! Somos {inn}. ¿Para qué fechas y cuántas personas le gustaría reservar?",
        "en": "Hi! This is {inn}. Which dates and how many guests would you like to book for?",
    },
    "ask_dates": {
        "pt": "Para quais datas? Por exemplo: de 10/12 a 12/12.",
        "es": "¿Para qué fechas? Por ejemplo: del 10/12 al 12/12.",
        "en": "Which dates? For example: December 10 to December 12.",
    },
    "ask_checkout": {
        "pt": "Entrada em {checkin}. Até quando (ou quantas noites)?",
        "es": "Llegada el {checkin}. ¿Hasta cuándo (o cuántas noches)?",
        "en": "Check-in {checkin}. Until when (or how many nights)?",
    },
    "ask_guests": {
        "pt": "De {checkin} a {checkout}. Quantas pessoas?",
        "es": "Del {checkin} al {checkout}. ¿Cuántas personas?",
        "en": "From {checkin} to {checkout}. How many guests?",
    },
    "ask_adults": {
        "pt": "E quantos adultos?",
        "es": "¿Y cuántos adultos?",
        "en": "And how many adults?",
    },
    # A question about the dates: its reason, then the readings offered (or a request).
    "ask_ambiguous_dates": {
        "pt": "Para eu não errar as datas:",
        "es": "Para no equivocarme con las fechas:",
        "en": "So I get the dates right:",
    },
    "ask_past_dates": {
        "pt": "Essas datas já passaram.",
        "es": "Esas fechas ya pasaron.",
        "en": "Those dates have passed.",
    },
    "ask_checkout_before_checkin": {
        "pt": "A saída ficou antes da entrada.",
        "es": "La salida quedó antes de la llegada.",
        "en": "The check-out came before the check-in.",
    },
    "ask_no_such_date": {
        "pt": "Essa data não existe no calendário.",
        "es": "Esa fecha no existe en el calendario.",
        "en": "That date is not on the calendar.",
    },
    "ask_weekday_mismatch": {
        "pt": "O dia da semana não bate com a data.",
        "es": "El día de la semana no coincide con la fecha.",
        "en": "The weekday does not match the date.",
    },
    "choose_one": {
        "pt": " Você quis dizer {choice}? Responda sim, ou mande as datas certas.",
        "es": " ¿Quiso decir {choice}? Responda sí, o envíe las fechas correctas.",
        "en": " Did you mean {choice}? Reply yes, or send the right dates.",
    },
    "choose_among": {
        "pt": " Você quis dizer:\n{choices}\nResponda com o número, ou mande as datas certas.",
        "es": " ¿Quiso decir:\n{choices}\nResponda con el número, o envíe las fechas correctas.",
        "en": " Did you mean:\n{choices}\nReply with the number, or send the right dates.",
    },
    "send_dates": {
        "pt": " Pode mandar as datas de entrada e saída? Ex.: de 10/12 a 12/12.",
        "es": " ¿Puede enviar las fechas de llegada y salida? Ej.: del 10/12 al 12/12.",
        "en": " Could you send the check-in and check-out dates? E.g. December 10 to 12.",
    },
    "span": {
        "pt": "de {checkin} a {checkout}",
        "es": "del {checkin} al {checkout}",
        "en": "{checkin} to {checkout}",
    },
    "span_open": {
        "pt": "entrada em {checkin}",
        "es": "llegada el {checkin}",
        "en": "check-in {checkin}",
    },
    "holiday_offer": {
        "pt": "Para {holiday}, sugiro de {checkin} a {checkout} ({nights:night}). Quer essas "
        "datas? Responda sim, ou mande as suas.",
        "es": "Para {holiday}, le sugiero del {checkin} al {checkout} ({nights:night}). ¿Le "
        "sirven esas fechas? Responda sí, o envíe las suyas.",
        "en": "For {holiday}, I'd suggest {checkin} to {checkout} ({nights:night}). Do those "
        "dates work? Reply yes, or send your own.",
    },
    "quote": {
        "pt": "Para {party}, de {checkin} a {checkout} ({nights:night}):\n"
        "{options}\nResponda com o número ou o nome do quarto para reservar.",
        "es": "Para {party}, del {checkin} al {checkout} ({nights:night}):\n"
        "{options}\nResponda con el número o el nombre de la habitación para reservar.",
        "en": "For {party}, {checkin} to {checkout} ({nights:night}):\n"
        "{options}\nReply with the number or the room's name to book.",
    },
    # The labels of tap-to-choose forms on Meta (a list's button and rows, reply buttons):
    # Graph allows 20 characters for a button, 72 for a row's description.
    "tap_see_options": {"pt": "Ver opções", "es": "Ver opciones", "en": "See options"},
    "tap_row": {"pt": "{total} no total", "es": "{total} en total", "en": "{total} in total"},
    "tap_yes": {"pt": "Sim", "es": "Sí", "en": "Yes"},
    "tap_other_dates": {"pt": "Outras datas", "es": "Otras fechas", "en": "Other dates"},
    "tap_cancel": {"pt": "Cancelar", "es": "Cancelar", "en": "Cancel"},
    "stale_options": {
        "pt": "Essa lista é de uma consulta anterior.",
        "es": "Esa lista es de una consulta anterior.",
        "en": "That list is from an earlier quote.",
    },
    "quote_line": {
        "pt": "{n}. {room}: {nightly} por noite, total {total}",
        "es": "{n}. {room}: {nightly} por noche, total {total}",
        "en": "{n}. {room}: {nightly} per night, {total} in total",
    },
    "unavailable": {
        "pt": "Não temos quartos livres para {party} de {checkin} a {checkout}.",
        "es": "No tenemos habitaciones libres para {party} del {checkin} al {checkout}.",
        "en": "We have no rooms for {party} from {checkin} to {checkout}.",
    },
    "refused_by_rule": {
        "pt": "Não consigo reservar de {checkin} a {checkout} para {party}.",
        "es": "No puedo reservar del {checkin} al {checkout} para {party}.",
        "en": "I can't book {checkin} to {checkout} for {party}.",
    },
    "rule_min_stay": {
        "pt": " Chegando em {date}, a estadia mínima é de {bound:night}.",
        "es": " Llegando el {date}, la estadía mínima es de {bound:night}.",
        "en": " Arriving {date}, the minimum stay is {bound:night}.",
    },
    "rule_max_stay": {
        "pt": " Chegando em {date}, a estadia máxima é de {bound:night}.",
        "es": " Llegando el {date}, la estadía máxima es de {bound:night}.",
        "en": " Arriving {date}, the maximum stay is {bound:night}.",
    },
    "rule_closed_to_arrival": {
        "pt": " Não recebemos chegadas em {date}.",
        "es": " No recibimos llegadas el {date}.",
        "en": " We take no arrivals on {date}.",
    },
    "rule_closed_to_departure": {
        "pt": " Não há saídas em {date}.",
        "es": " No hay salidas el {date}.",
        "en": " There are no departures on {date}.",
    },
    "alternatives": {
        "pt": " Posso oferecer:\n{options}\nResponda com o número para reservar.",
        "es": " Puedo ofrecerle:\n{options}\nResponda con el número para reservar.",
        "en": " I can offer:\n{options}\nReply with the number to book.",
    },
    "alternative_line": {
        "pt": "{n}. {checkin} a {checkout} ({nights:night}), {room}: total {total}",
        "es": "{n}. {checkin} al {checkout} ({nights:night}), {room}: total {total}",
        "en": "{n}. {checkin} to {checkout} ({nights:night}), {room}: {total} in total",
    },
    "ask_ages": {
        "pt": "Qual a idade das crianças? O preço depende da idade.",
        "es": "¿Qué edad tienen los niños? El precio depende de la edad.",
        "en": "How old are the children? The price depends on their ages.",
    },
    "no_alternatives": {
        "pt": " Quer tentar outras datas?",
        "es": " ¿Quiere probar otras fechas?",
        "en": " Would you like to try other dates?",
    },
    "too_many_guests": {
        "pt": "A pousada recebe até {most:person} ao todo. Para grupos maiores, fale com a "
        "pousada.",
        "es": "La posada recibe hasta {most:person} en total. Para grupos más grandes, hable "
        "con la posada.",
        "en": "The inn hosts up to {most:person} in all. For larger groups, please contact the "
        "inn.",
    },
    "bad_dates": {
        "pt": "Não consegui usar essas datas ({problem}). Pode mandar de novo? Ex.: de 10/12 "
        "a 12/12.",
        "es": "No pude usar esas fechas ({problem}). ¿Puede enviarlas de nuevo? Ej.: del "
        "10/12 al 12/12.",
        "en": "I couldn't use those dates ({problem}). Could you send them again? E.g. "
        "December 10 to 12.",
    },
    "problem_past": {
        "pt": "a data de entrada já passou",
        "es": "la fecha de llegada ya pasó",
        "en": "the check-in date has passed",
    },
    "problem_order": {
        "pt": "a saída precisa ser depois da entrada",
        "es": "la salida debe ser después de la llegada",
        "en": "check-out must be after check-in",
    },
    "problem_too_long": {
        "pt": "o máximo é 30 noites",
        "es": "el máximo es 30 noches",
        "en": "the most is 30 nights",
    },
    "which_option": {
        "pt": "Qual quarto? Responda com o número (1 a {count}).",
        "es": "¿Cuál habitación? Responda con el número (1 a {count}).",
        "en": "Which room? Reply with its number (1 to {count}).",
    },
    "payment_link": {
        "pt": "Pré-reserva feita: {room}, {checkin} a {checkout}, total {total}. Pague por "
        "este link até {deadline} (horário da pousada) para confirmar; até lá o quarto é "
        "seu:\n{url}",
        "es": "Pre-reserva hecha: {room}, del {checkin} al {checkout}, total {total}. Pague "
        "con este enlace hasta el {deadline} (hora de la posada) para confirmar; hasta "
        "entonces la habitación es suya:\n{url}",
        "en": "Your room is held: {room}, {checkin} to {checkout}, {total} in total. Pay with "
        "this link by {deadline} (the inn's time) to confirm; until then the room is "
        "yours:\n{url}",
    },
    "sold_out": {
        "pt": "Esse quarto acabou de ser reservado por outra pessoa. Quer que eu veja as "
        "opções de novo? Responda sim.",
        "es": "Esa habitación se acaba de reservar. ¿Reviso las opciones otra vez? Responda sí.",
        "en": "That room was just taken. Shall I check the options again? Reply yes.",
    },
    "hold_cancelled": {
        "pt": "Pronto, cancelei sua pré-reserva. Se quiser, mande novas datas.",
        "es": "Listo, cancelé su pre-reserva. Si quiere, envíe nuevas fechas.",
        "en": "Done, I cancelled your hold. Send new dates whenever you like.",
    },
    "nothing_to_cancel": {
        "pt": "Você não tem nenhuma pré-reserva pendente para cancelar.",
        "es": "No tiene ninguna pre-reserva pendiente para cancelar.",
        "en": "You have no pending hold to cancel.",
    },
    "human": {
        "pt": "Claro! Vou pedir para alguém da pousada falar com você assim que possível.",
        "es": "¡Claro! Le pediré a alguien de la posada que le escriba lo antes posible.",
        "en": "Of course! I'll ask someone from the inn to get back to you as soon as possible.",
    },
    "cancel_requested": {
        "pt": "Recebemos seu pedido de cancelamento. A pousada vai confirmar com você em breve.",
        "es": "Recibimos su pedido de cancelación. La posada se lo confirmará en breve.",
        "en": "We got your cancellation request. The inn will confirm it with you shortly.",
    },
    "help": {
        "pt": "Posso ver disponibilidade e fazer sua reserva. Mande as datas e o número de "
        "pessoas, por exemplo: de 10/12 a 12/12, 2 pessoas. Para falar com alguém, "
        "escreva: atendente.",
        "es": "Puedo ver disponibilidad y hacer su reserva. Envíe las fechas y el número de "
        "personas, por ejemplo: del 10/12 al 12/12, 2 personas. Para hablar con alguien, "
        "escriba: persona.",
        "en": "I can check availability and book for you. Send the dates and number of "
        "guests, for example: December 10 to 12, 2 guests. To talk to someone, write: human.",
    },
    "voice_write_instead": {
        "pt": "Não consegui ouvir este áudio. Pode me escrever as datas e quantas pessoas?",
        "es": "No pude escuchar este audio. ¿Me escribe las fechas y cuántas personas?",
        "en": "I couldn't listen to this voice note. Could you write me the dates and how many "
        "guests?",
    },
    "write_please": {
        "pt": "Por enquanto só consigo ler mensagens escritas. Pode me mandar por texto as "
        "datas e quantas pessoas?",
        "es": "Por ahora solo puedo leer mensajes escritos. ¿Me envía por texto las fechas y "
        "cuántas personas?",
        "en": "For now I can only read written messages. Could you text me the dates and how "
        "many guests?",
    },
    "confirmed": {
        "pt": "Pagamento recebido! Sua reserva está confirmada. Código: {code}. "
        "{room_line}Até breve!",
        "es": "¡Pago recibido! Su reserva está confirmada. Código: {code}. {room_line}¡Hasta "
        "pronto!",
        "en": "Payment received! Your booking is confirmed. Code: {code}. {room_line}See you soon!",
    },
    "policy_line": {
        "pt": "Cancelamento: {tiers}{after}. ",
        "es": "Cancelación: {tiers}{after}. ",
        "en": "Cancellation: {tiers}{after}. ",
    },
    "policy_tier": {
        "pt": "reembolso de {percent}% até {days:day} antes da chegada",
        "es": "reembolso del {percent}% hasta {days:day} antes de la llegada",
        "en": "{percent}% refund up to {days:day} before arrival",
    },
    "policy_tier_arrival": {
        "pt": "reembolso de {percent}% até o dia da chegada",
        "es": "reembolso del {percent}% hasta el día de llegada",
        "en": "{percent}% refund up to the day of arrival",
    },
    "policy_after": {
        "pt": "; depois, sem reembolso",
        "es": "; después, sin reembolso",
        "en": "; after that, no refund",
    },
    "policy_none": {"pt": "sem reembolso", "es": "sin reembolso", "en": "no refund"},
    "cancelled": {
        "pt": "Sua reserva {code} ({checkin} a {checkout}) foi cancelada pela pousada. "
        "{refund_line}",
        "es": "Su reserva {code} (del {checkin} al {checkout}) fue cancelada por la posada. "
        "{refund_line}",
        "en": "Your booking {code} ({checkin} to {checkout}) was cancelled by the inn. "
        "{refund_line}",
    },
    "refund_line": {
        "pt": "Vamos devolver {amount} no mesmo meio de pagamento.",
        "es": "Le devolveremos {amount} por el mismo medio de pago.",
        "en": "We will refund {amount} to the same payment method.",
    },
    "no_refund_line": {
        "pt": "Pela política de cancelamento, não há reembolso.",
        "es": "Según la política de cancelación, no hay reembolso.",
        "en": "Under the cancellation policy, there is no refund.",
    },
    "stay_line": {
        "pt": "{checkin} a {checkout}. ",
        "es": "Del {checkin} al {checkout}. ",
        "en": "{checkin} to {checkout}. ",
    },
    "hold_ended": {
        "pt": "Sua pré-reserva de {checkin} a {checkout} expirou sem pagamento e os quartos "
        "foram liberados. Quer que eu faça uma nova cotação? Responda sim.",
        "es": "Su pre-reserva del {checkin} al {checkout} venció sin pago y se liberaron las "
        "habitaciones. ¿Cotizo de nuevo? Responda sí.",
        "en": "Your hold for {checkin} to {checkout} ended without payment and the rooms "
        "were released. Shall I quote again? Reply yes.",
    },
    "payment_link_again": {
        "pt": "Aqui está o link de pagamento da sua pré-reserva ({checkin} a {checkout}, "
        "{total}), válido até {deadline}:\n{url}",
        "es": "Aquí está el enlace de pago de su pre-reserva (del {checkin} al {checkout}, "
        "{total}), válido hasta {deadline}:\n{url}",
        "en": "Here is the payment link for your hold ({checkin} to {checkout}, {total}), "
        "valid until {deadline}:\n{url}",
    },
    "payment_declined": {
        "pt": "O pagamento da sua pré-reserva de {checkin} a {checkout} não foi aprovado e os "
        "quartos foram liberados. Quer tentar de novo? Responda sim.",
        "es": "El pago de su pre-reserva del {checkin} al {checkout} no fue aprobado y se "
        "liberaron las habitaciones. ¿Lo intentamos de nuevo? Responda sí.",
        "en": "The payment for your hold from {checkin} to {checkout} was not approved and the "
        "rooms were released. Shall we try again? Reply yes.",
    },
    "failed": {
        "pt": "Desculpe, tive um problema para concluir. Pode tentar de novo em instantes?",
        "es": "Disculpe, tuve un problema. ¿Puede intentarlo de nuevo en un momento?",
        "en": "Sorry, something went wrong on our side. Could you try again in a moment?",
    },
}


# Nouns a count meets in a reply: (singular, plural) per language.
NOUNS: dict[str, dict[str, tuple[str, str]]] = {
    "person": {
        "pt": ("pessoa", "pessoas"),
        "es": ("persona", "personas"),
        "en": ("guest", "guests"),
    },
    "night": {"pt": ("noite", "noites"), "es": ("noche", "noches"), "en": ("night", "nights")},
    "day": {"pt": ("dia", "dias"), "es": ("día", "días"), "en": ("day", "days")},
    "adult": {"pt": ("adulto", "adultos"), "es": ("adulto", "adultos"), "en": ("adult", "adults")},
    "child": {
        "pt": ("criança", "crianças"),
        "es": ("niño", "niños"),
        "en": ("child", "children"),
    },
}
# How a holiday is named in a reply.
HOLIDAYS: dict[str, dict[str, str]] = {
    "reveillon": {"pt": "o Réveillon", "es": "Año Nuevo", "en": "New Year's Eve"},
    "carnaval": {"pt": "o Carnaval", "es": "Carnaval", "en": "Carnival"},
    "semana santa": {"pt": "a Semana Santa", "es": "Semana Santa", "en": "Easter"},
    "tiradentes": {
        "pt": "o feriado de Tiradentes",
        "es": "el feriado de Tiradentes",
        "en": "the Tiradentes holiday",
    },
    "corpus christi": {"pt": "Corpus Christi", "es": "Corpus Christi", "en": "Corpus Christi"},
    "independencia": {
        "pt": "o 7 de Setembro",
        "es": "el 7 de septiembre",
        "en": "Independence Day (September 7)",
    },
    "aparecida": {
        "pt": "o 12 de Outubro",
        "es": "el 12 de octubre",
        "en": "the October 12 holiday",
    },
    "finados": {"pt": "Finados", "es": "el Día de los Difuntos", "en": "All Souls' Day"},
    "proclamacao": {
        "pt": "o 15 de Novembro",
        "es": "el 15 de noviembre",
        "en": "the November 15 holiday",
    },
    "natal": {"pt": "o Natal", "es": "Navidad", "en": "Christmas"},
}
_AND = {"pt": " e ", "es": " y ", "en": " and "}
# Children's ages in a reply: (one year, several years, under one).
_AGES = {
    "pt": ("{} ano", "{} anos", "bebê"),
    "es": ("{} año", "{} años", "bebé"),
    "en": ("age {}", "ages {}", "baby"),
}


def count(n: int, noun: str, language: str) -> str:
    """``n`` with ``noun`` in the right number: "1 noite", "3 noites", "2 nights"."""
    singular, plural = NOUNS[noun][reply_language(language)]
    return f"{n} {singular if n == 1 else plural}"


class _Counting(string.Formatter):
    """str.format, where a field whose format spec names a noun is counted in the language."""

    def __init__(self, language: str) -> None:
        self.language = language

    def format_field(self, value: object, format_spec: str) -> str:
        if format_spec in NOUNS:
            return count(int(value), format_spec, self.language)  # type: ignore[call-overload]
        return str(super().format_field(value, format_spec))


def fill(template: str, language: str, **fields: object) -> str:
    """Fill ``template`` as ``render`` does, for texts kept elsewhere (the staff's)."""
    return _Counting(language).format(template, **fields)


def render(key: str, language: str, **fields: object) -> str:
    lang = reply_language(language)
    return fill(TEMPLATES[key][lang], lang, **fields)


def reply_language(language: str) -> str:
    """The language a reply is written in: the guest's, when we write it."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def joined(items: list[str], language: str) -> str:
    """ "a, b e c" in the language."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + _AND[reply_language(language)] + items[-1]


def party(
    guests: int, adults: int | None, children_ages: list[int | None] | None, language: str
) -> str:
    """Who the stay is for, as understood: "2 adultos e 2 crianças (5 e 8 anos)", or
    "3 pessoas" when the guest gave only a count."""
    lang = reply_language(language)
    if adults is None or not children_ages:
        return count(guests, "person", lang)
    said = count(adults, "adult", lang) + _AND[lang] + count(len(children_ages), "child", lang)
    known = [age for age in children_ages if age is not None]
    if not known:
        return said
    one, several, baby = _AGES[lang]
    years = [str(age) for age in known if age > 0]
    singular = len(years) == 1 if lang == "en" else years == ["1"]  # "age 7", "1 ano"
    parts = [baby] * (len(known) - len(years))
    if years:
        parts.append((one if singular else several).format(joined(years, lang)))
    return f"{said} ({joined(parts, lang)})"


def policy_line(tiers: list[tuple[int, int]], language: str) -> str:
    """The cancellation policy in one line ("Cancelamento: reembolso de 100% até 7 dias
    antes da chegada, …; depois, sem reembolso. "), from its (days before, percent) tiers
    most days first; empty without a policy."""
    if not tiers:
        return ""
    lang = reply_language(language)
    paying = [
        render("policy_tier", lang, percent=pct, days=days)
        if days
        else render("policy_tier_arrival", lang, percent=pct)
        for days, pct in tiers
        if pct > 0
    ]
    if not paying:
        return render("policy_line", lang, tiers=TEMPLATES["policy_none"][lang], after="")
    refunds_to_the_end = any(days == 0 and pct > 0 for days, pct in tiers)
    after = "" if refunds_to_the_end else TEMPLATES["policy_after"][lang]
    return render("policy_line", lang, tiers=", ".join(paying), after=after)


def money(cents: int, currency: str, language: str) -> str:
    whole, frac = divmod(cents, 100)
    grouped = f"{whole:,}"
    symbol = {"BRL": "R$ ", "USD": "US$ ", "EUR": "€ "}.get(currency.upper(), f"{currency} ")
    if language == "en":
        return f"{symbol}{grouped}.{frac:02d}"
    return f"{symbol}{grouped.replace(',', '.')},{frac:02d}"


def day(date: dt.date, language: str) -> str:
    # English in words ("March 8, 2031"): a numeric 03/08 reads as a different day to
    # guests who write day first, and to our own understanding of it.
    if language == "en":
        return f"{date:%B} {date.day}, {date.year}"
    return f"{date:%d/%m/%Y}"


_MOMENT = {"pt": "%d/%m às %H:%M", "es": "%d/%m a las %H:%M", "en": "%m/%d at %I:%M %p"}


def moment(at: dt.datetime, language: str) -> str:
    """A deadline in the inn's local time (``at`` already converted)."""
    return at.strftime(_MOMENT.get(language, _MOMENT[DEFAULT_LANGUAGE]))


def nights_in_words(nights: list[dt.date], language: str) -> str:
    """Nights as runs the staff read at a glance: "as noites de 10/01 a 11/01 e 15/01"."""
    runs: list[list[dt.date]] = []
    for night in sorted(nights):
        if runs and night == runs[-1][-1] + dt.timedelta(days=1):
            runs[-1].append(night)
        else:
            runs.append([night])
    words = {"pt": (" a ", " e "), "es": (" al ", " y "), "en": (" to ", " and ")}
    to, also = words.get(language, words[DEFAULT_LANGUAGE])
    shown = [
        f"{run[0]:%d/%m}" if len(run) == 1 else f"{run[0]:%d/%m}{to}{run[-1]:%d/%m}" for run in runs
    ]
    joined = ", ".join(shown[:-1]) + also + shown[-1] if len(shown) > 1 else shown[0]
    lead = {"pt": "a noite de ", "es": "la noche del ", "en": "the night of "}
    leads = {"pt": "as noites de ", "es": "las noches del ", "en": "the nights of "}
    return (leads if len(nights) > 1 else lead).get(language, leads["pt"]) + joined
