"""The guest conversation: from what a message means to what the bot does and says.

``respond`` handles one inbound message, ``notify`` one hold or reservation fact. Both
return a ``Turn`` (the replies, and the conversation's new state) and write nothing
themselves except through the inventory and payment functions they call, each of which
is idempotent: a hold is keyed by the guest's message id, its Checkout Session by the hold.
So a task that fails after acting and is retried repeats the same decisions from the
same saved state, and the caller then records the turn once.

State (``conversations.state``): new → collecting → quoted → awaiting_payment → booked,
requote after a hold ended or a room sold out, and human while the inn's staff have the
conversation (the guest asked for a person, or was not understood twice in a row): the
bot is silent until a staff member's "#bot" or HANDOFF_TIMEOUT_SECONDS. ``context`` holds
the stay asked for (``stay``: dates, ``guests`` and, when the guest said who comes,
``adults`` and ``children_ages``), the readings of a question about the dates or a holiday's
suggested stay awaiting the guest's answer (``choices``), the numbered options last shown
(``options``), the pending ``hold_id`` and, once booked, the ``reservation_code``.

Ask, don't guess: dates with two readings, in the past, out of order or that do not exist
get one short question, with the readings worth offering; the guest's "2", "the first" or
"yes" picks one, new dates replace them. A holiday by name is a suggested stay the guest
confirms. Every quote restates the dates and the party it understood.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from app.conversations import actions, replies, taps
from app.conversations.model import Conversation, Services, Turn
from app.conversations.understanding import Choice, Understood, understand
from app.db import QUERIES
from app.errors import BadRequest, Conflict, NothingAvailable
from app.inventory.holds import HoldRequest, Unit
from app.inventory.properties import Property
from app.inventory.quote import Alternative, Offer
from app.inventory.stay import MAX_GUESTS, MAX_STAY_NIGHTS, Party, Stay
from app.llm.reading import MAX_CHILD_AGE, ReadingContext, read_message
from app.messaging.inbound import Reading

# Hold cancellations a guest's own message causes (and answers).
GUEST_CANCEL_REASONS = frozenset({"guest_request", "replaced"})


def _stay_fields(context: dict[str, Any]) -> dict[str, Any]:
    return dict(context.get("stay") or {})


def _merge_stay(stay: dict[str, Any], understood: Understood) -> bool:
    """Fold what the message says about the stay into ``stay``; True when it said anything."""
    changed = False
    if understood.checkin is not None:  # new dates: the guests stay, the old stay goes
        stay.pop("checkout", None)
        stay.pop("nights", None)
        stay["checkin"] = understood.checkin.isoformat()
        changed = True
    if understood.checkout is not None:
        stay["checkout"] = understood.checkout.isoformat()
        changed = True
    if understood.nights is not None:
        if "checkin" in stay:
            checkin = dt.date.fromisoformat(stay["checkin"])
            stay["checkout"] = (checkin + dt.timedelta(days=understood.nights)).isoformat()
        else:
            stay["nights"] = understood.nights
        changed = True
    if "checkin" in stay and "checkout" not in stay and "nights" in stay:
        checkin = dt.date.fromisoformat(stay["checkin"])
        stay["checkout"] = (checkin + dt.timedelta(days=stay.pop("nights"))).isoformat()
    return _merge_party(stay, understood) or changed


def _merge_party(stay: dict[str, Any], understood: Understood) -> bool:
    """The party the message names replaces the one before; True when it named one."""
    if understood.guests is None:
        return False
    stay["guests"] = understood.guests
    stay["adults"] = understood.adults
    ages = understood.children_ages
    stay["children_ages"] = list(ages) if ages is not None else None
    return True


def _picked(understood: Understood, choices: list[list[str | None]]) -> int | None:
    """Which offered reading the guest's answer takes (0-based), if it takes one."""
    if understood.checkin is not None or understood.question is not None:
        return None  # new dates: the guest's own, not a pick
    pick = understood.number or understood.option
    if pick is None and understood.intent == "confirm" and len(choices) == 1:
        pick = 1
    return pick - 1 if pick is not None and 1 <= pick <= len(choices) else None


async def respond(
    services: Services,
    conv: Conversation,
    text: str,
    message_id: str,
    reading: Reading = "text",
) -> Turn:
    prop = conv.property
    today = prop.today()
    context = dict(conv.context)
    if reading == "silent":  # a reaction, an edit, a deletion…: nothing to answer or count
        return Turn(conv.language or replies.DEFAULT_LANGUAGE, conv.state, context)
    options: list[dict[str, Any]] = list(context.get("options") or [])
    tap = taps.parse(text) if reading == "text" else None
    # A tap's id is not words: the conversation's language stays.
    understood = understand("" if tap else text, today, [option["name"] for option in options])
    language = understood.language or conv.language or replies.DEFAULT_LANGUAGE
    turn = Turn(language, conv.state, context)

    if conv.state == "human":
        since = dt.datetime.fromisoformat(context["human_since"])
        timeout = dt.timedelta(seconds=services.settings.handoff_timeout_seconds)
        if dt.datetime.now(dt.UTC) - since < timeout:
            return turn  # the staff have the conversation: the bot stays silent
        context.pop("human_since")
        turn.state = "collecting"
    if reading == "welcome":  # the guest opened the chat
        turn.state = "collecting" if turn.state == "new" else turn.state
        return turn.say("greeting", inn=prop.name)
    if reading == "media":  # not "not understood": ask for words instead
        return turn.say("write_please")
    if reading == "voice":  # a voice note nobody could listen to: the same, once per note
        return turn.say("voice_write_instead")
    ref = taps.quote_ref(message_id)
    if tap is not None:
        context.pop("misunderstood", None)
        return await _tapped(services, conv, turn, tap, message_id, ref)
    if context.pop("awaiting_ages", False) and _took_ages(context, text):
        return await _next_step(services, prop, turn, ref)
    if services.model is not None and _rules_gave_up(understood, context, text):
        understood = await _with_model(services, prop, understood, text, today, context)
        turn.language = understood.language or turn.language
    if understood.intent != "unknown":
        context.pop("misunderstood", None)
    if understood.intent == "human":
        return _hand_off(conv, turn, "asked")
    if understood.intent == "cancel":
        if turn.state == "booked":
            return _cancellation_request(conv, turn)
        return await _cancel(services, turn)

    stay = _stay_fields(context)
    choices = context.pop("choices", None)
    if choices:
        picked = _picked(understood, choices)
        if picked is not None:
            _take_choice(stay, choices[picked])
            _merge_party(stay, understood)
            context["stay"] = stay
            return await _next_step(services, prop, turn, ref)
    if understood.question is not None or understood.holiday is not None:
        _merge_party(stay, understood)
        context["stay"] = stay
        return _ask(turn, understood, today, ref)
    option = understood.option
    if understood.number is not None:
        # A bare number answers the last question: which option, how many adults with the
        # children, or how many guests.
        if conv.state == "quoted" and options:
            option = understood.number
        elif "checkin" in stay and stay.get("children_ages") and stay.get("adults") is None:
            stay["adults"] = understood.number
            stay["guests"] = understood.number + len(stay["children_ages"])
        elif "checkin" in stay and "guests" not in stay:
            stay["guests"] = understood.number
    changed = _merge_stay(stay, understood) or stay != _stay_fields(context)
    context["stay"] = stay

    if not changed and (option is not None or understood.intent == "confirm"):
        if conv.state == "quoted" and options:
            if option is None and len(options) == 1:
                option = 1
            if option is None or not 1 <= option <= len(options):
                return turn.say("which_option", count=len(options))
            return await _book(services, conv, turn, options[option - 1], message_id)
        if conv.state == "requote":
            return await _next_step(services, prop, turn, ref)
    if changed or understood.intent in ("availability", "price"):
        return await _next_step(services, prop, turn, ref)
    if understood.intent == "greeting":
        turn.state = "collecting" if turn.state == "new" else turn.state
        return turn.say("greeting", inn=prop.name)
    if understood.intent == "unknown":
        context["misunderstood"] = context.get("misunderstood", 0) + 1
        if context["misunderstood"] >= 2:  # twice in a row: a person will do better
            context.pop("misunderstood")
            return _hand_off(conv, turn, "not_understood")
    return turn.say("help")


def _took_ages(context: dict[str, Any], text: str) -> bool:
    """The children's ages the guest was asked for ("5 e 8"), one per child not yet aged,
    into the stay; False when the answer does not give exactly those."""
    stay = _stay_fields(context)
    ages = list(stay.get("children_ages") or [])
    unknown = [i for i, age in enumerate(ages) if age is None]
    said = [int(n) for n in re.findall(r"\b\d{1,2}\b", text) if int(n) <= MAX_CHILD_AGE]
    if not unknown or len(said) != len(unknown):
        return False
    for i, age in zip(unknown, said, strict=True):
        ages[i] = age
    stay["children_ages"] = ages
    context["stay"] = stay
    return True


def _rules_gave_up(understood: Understood, context: dict[str, Any], text: str) -> bool:
    """The conversation still has no dates after the message, or a question it asked was
    not settled, and the message is not one the rules read for sure (a person, a
    cancellation, a number, an option, a yes, their own question or holiday offer)."""
    if understood.intent in ("human", "cancel", "confirm") or understood.checkin is not None:
        return False
    if any(v is not None for v in (understood.number, understood.option, understood.holiday)):
        return False
    if understood.question is not None:
        return False
    if context.get("choices"):
        return True
    if "checkin" in (context.get("stay") or {}):
        return understood.intent == "unknown"
    return understood.intent != "greeting" or len(text.split()) >= 8


async def _with_model(
    services: Services,
    prop: Property,
    understood: Understood,
    text: str,
    today: dt.date,
    context: dict[str, Any],
) -> Understood:
    """The rules' reading, with what they left empty filled from the model's validated one."""
    assert services.model is not None
    ctx = ReadingContext(
        today=today,
        max_guests=await actions.inn_capacity(services, prop),
        options=[option["name"] for option in context.get("options") or []],
        choices=[f"{ci} to {co or '?'}" for ci, co in context.get("choices") or []],
    )
    read = await read_message(services.model, text, ctx)
    if read is None:
        return understood
    party = understood.guests is None and read.guests is not None
    dates = read.checkin is not None  # a pair, validated together: it replaces the nights
    return replace(
        understood,
        language=understood.language or read.language,
        intent=read.intent if understood.intent == "unknown" else understood.intent,
        checkin=read.checkin,
        checkout=read.checkout if dates else understood.checkout,
        nights=None if dates else understood.nights,
        adults=read.adults if party else understood.adults,
        children_ages=read.children_ages if party else understood.children_ages,
        option=read.option,
    )


def _take_choice(stay: dict[str, Any], choice: list[str | None]) -> None:
    checkin, checkout = choice
    stay.pop("nights", None)
    stay.pop("checkout", None)
    stay["checkin"] = checkin
    if checkout is not None:
        stay["checkout"] = checkout


async def _tapped(
    services: Services, conv: Conversation, turn: Turn, tap: taps.Tap, message_id: str, ref: str
) -> Turn:
    """A tapped row or button, by its id. One from an earlier list or question gets what
    holds now (the current options, or the question for what is missing), never the old
    choice."""
    context = turn.context
    if tap.kind == "h":  # only the current hold: an older one has ended already
        if tap.value == "cancel" and context.get("hold_id") == tap.ref:
            return await _cancel(services, turn)
        return turn.say("nothing_to_cancel")
    current = tap.ref == context.get("quote_id")
    options = context.get("options") or []
    number = tap.number or 0
    if tap.kind == "q" and current and conv.state == "quoted" and 1 <= number <= len(options):
        return await _book(services, conv, turn, options[number - 1], message_id)
    choices = context.get("choices") or []
    stay = _stay_fields(context)
    if tap.kind == "c" and current and choices:
        context.pop("choices")
        if tap.value == "other":
            turn.state = "collecting"
            return turn.say("ask_dates")
        if 1 <= number <= len(choices):
            _take_choice(stay, choices[number - 1])
            context["stay"] = stay
            return await _next_step(services, conv.property, turn, ref)
    context["stay"] = stay
    await _next_step(services, conv.property, turn, ref)
    # One message, so the note cannot arrive after the options it introduces.
    turn.replies[0] = replies.render("stale_options", turn.language) + "\n" + turn.replies[0]
    return turn


def _ask(turn: Turn, understood: Understood, today: dt.date, ref: str) -> Turn:
    """One short question about the dates, offering the readings that can be booked; or a
    holiday's suggested stay to confirm."""
    lang = turn.language
    turn.state = "collecting"
    if understood.holiday is not None:
        h = understood.holiday
        turn.context["choices"] = [[h.checkin.isoformat(), h.checkout.isoformat()]]
        turn.context["quote_id"] = ref
        return turn.say_with(
            taps.yes_or_other(ref, lang),
            "holiday_offer",
            holiday=replies.HOLIDAYS[h.name][replies.reply_language(lang)],
            checkin=replies.day(h.checkin, lang),
            checkout=replies.day(h.checkout, lang),
            nights=(h.checkout - h.checkin).days,
        )
    assert understood.question is not None
    bookable = [c for c in understood.choices if _bookable(c, today)]
    turn.say(f"ask_{understood.question}")
    if bookable:
        turn.context["choices"] = [[ci.isoformat(), co and co.isoformat()] for ci, co in bookable]
    if len(bookable) == 1:
        turn.context["quote_id"] = ref
        turn.interactive[len(turn.replies) - 1] = taps.yes_or_other(ref, lang)
        turn.replies[-1] += replies.render("choose_one", lang, choice=_span(bookable[0], lang))
    elif bookable:
        lines = "\n".join(f"{n}. {_span(c, lang)}" for n, c in enumerate(bookable, start=1))
        turn.replies[-1] += replies.render("choose_among", lang, choices=lines)
    else:
        turn.replies[-1] += replies.render("send_dates", lang)
    return turn


def _bookable(choice: Choice, today: dt.date) -> bool:
    checkin, checkout = choice
    return checkin >= today and (
        checkout is None or 0 < (checkout - checkin).days <= MAX_STAY_NIGHTS
    )


def _span(choice: Choice, lang: str) -> str:
    checkin, checkout = choice
    if checkout is None:
        return replies.render("span_open", lang, checkin=replies.day(checkin, lang))
    return replies.render(
        "span", lang, checkin=replies.day(checkin, lang), checkout=replies.day(checkout, lang)
    )


def _party_of(stay: dict[str, Any]) -> Party:
    """The party the guest named (a count alone: that many adults)."""
    ages = stay.get("children_ages") or []
    adults = stay.get("adults")
    return Party(int(adults if adults is not None else stay["guests"]), tuple(ages))


def _party(stay: dict[str, Any], lang: str) -> str:
    return replies.party(int(stay["guests"]), stay.get("adults"), stay.get("children_ages"), lang)


def _hand_off(conv: Conversation, turn: Turn, reason: str) -> Turn:
    turn.state = "human"
    turn.context["human_since"] = dt.datetime.now(dt.UTC).isoformat()
    turn.facts.append(
        (
            "conversation.handoff",
            {"conversation_id": str(conv.id), "property_id": conv.property.id, "reason": reason},
        )
    )
    return turn.say("human")


def _cancellation_request(conv: Conversation, turn: Turn) -> Turn:
    """A confirmed stay is the inn's to cancel (policies, refunds): pass the request on."""
    turn.facts.append(
        (
            "reservation.cancel_requested",
            {
                "conversation_id": str(conv.id),
                "property_id": conv.property.id,
                "code": turn.context.get("reservation_code"),
            },
        )
    )
    return turn.say("cancel_requested")


async def _cancel(services: Services, turn: Turn) -> Turn:
    hold_id = turn.context.get("hold_id")
    if hold_id is None:
        return turn.say("nothing_to_cancel")
    cancelled = await actions.cancel(services, hold_id, "guest_request")
    turn.context.pop("hold_id")
    turn.state = "collecting"
    # Not cancelled: it had already expired or been paid; the event for that speaks.
    return turn.say("hold_cancelled") if cancelled else turn.say("nothing_to_cancel")


async def _next_step(services: Services, prop: Property, turn: Turn, ref: str) -> Turn:
    """Ask for what is still missing, or quote (its options shown as ``ref``)."""
    today = prop.today()
    stay = turn.context["stay"]
    lang = turn.language
    turn.state = "collecting"
    if "checkin" not in stay:
        return turn.say("ask_dates")
    checkin = dt.date.fromisoformat(stay["checkin"])
    if "checkout" not in stay:
        return turn.say("ask_checkout", checkin=replies.day(checkin, lang))
    checkout = dt.date.fromisoformat(stay["checkout"])
    if "guests" not in stay:
        return turn.say(
            "ask_guests", checkin=replies.day(checkin, lang), checkout=replies.day(checkout, lang)
        )
    if stay.get("children_ages") and stay.get("adults") is None:
        return turn.say("ask_adults")
    if (
        None in (stay.get("children_ages") or ())
        and "ages_asked" not in turn.context
        and await actions.prices_children(services, prop)
    ):
        # Once: an answer without the ages prices those children as adults.
        turn.context["ages_asked"] = turn.context["awaiting_ages"] = True
        return turn.say("ask_ages")
    problem = _date_problem(checkin, checkout, today)
    if problem is not None:
        del stay["checkin"], stay["checkout"]
        return turn.say("bad_dates", problem=replies.render(problem, lang))
    try:
        wanted = Stay(checkin, checkout, int(stay["guests"]))
        party = _party_of(stay)
    except BadRequest:
        return await _too_many(services, prop, turn)
    try:
        found, nearby, refusal = await actions.quote_stay(services, prop, wanted, party, today)
    except BadRequest:
        return await _too_many(services, prop, turn)
    policy = replies.policy_line(await actions.policy(services, prop), lang).strip()
    if found:
        return _quoted(prop, turn, wanted, found, ref, policy)
    shown = {
        "party": _party(stay, lang),
        "checkin": replies.day(checkin, lang),
        "checkout": replies.day(checkout, lang),
    }
    if refusal is None:
        turn.say("unavailable", **shown)
    else:  # a rule of the calendar, not a lack of rooms: say which
        turn.say("refused_by_rule", **shown)
        turn.replies[-1] += replies.render(
            f"rule_{refusal.code}", lang, date=replies.day(refusal.on, lang), bound=refusal.bound
        )
    if not nearby:
        turn.replies[-1] += replies.render("no_alternatives", lang)
        return turn
    return _proposed(prop, turn, party, nearby, ref, policy)


def _date_problem(checkin: dt.date, checkout: dt.date, today: dt.date) -> str | None:
    if checkin < today:
        return "problem_past"
    if checkout <= checkin:
        return "problem_order"
    if (checkout - checkin).days > MAX_STAY_NIGHTS:
        return "problem_too_long"
    return None


async def _too_many(services: Services, prop: Property, turn: Turn) -> Turn:
    """A party the whole inn cannot host (several rooms counted)."""
    most = min(await actions.inn_capacity(services, prop), MAX_GUESTS)
    for field in ("guests", "adults", "children_ages"):
        turn.context["stay"].pop(field, None)
    return turn.say("too_many_guests", most=most)


def _priced_name(offer: Offer, prop: Property, lang: str) -> str:
    """ "Std" for one room; "2x Std (R$ 600,00 + R$ 600,00)" for several, each room's price."""
    if len(offer.units) == 1:
        return offer.name
    each = " + ".join(replies.money(o.total_cents, prop.currency, lang) for o, _ in offer.units)
    return f"{offer.name} ({each})"


def _proposed(
    prop: Property,
    turn: Turn,
    party: Party,
    nearby: list[Alternative],
    ref: str,
    policy: str,
) -> Turn:
    """The nearest stays that can be booked, numbered (and a list on Meta) like a quote's
    options: each is one number or one tap from its hold."""
    lang = turn.language
    turn.context["quote_id"] = ref
    turn.context["options"] = [
        {
            "units": [{"room_type_id": alt.room_type_id, **party.as_json()}],
            "name": alt.name,
            "total_cents": alt.total_cents,
            "checkin": alt.stay.checkin.isoformat(),
            "checkout": alt.stay.checkout.isoformat(),
        }
        for alt in nearby
    ]
    lines = "\n".join(
        replies.render(
            "alternative_line",
            lang,
            n=n,
            checkin=replies.day(alt.stay.checkin, lang),
            checkout=replies.day(alt.stay.checkout, lang),
            nights=alt.stay.nights,
            room=alt.name,
            total=replies.money(alt.total_cents, prop.currency, lang),
        )
        for n, alt in enumerate(nearby, start=1)
    )
    turn.replies[-1] += replies.render("alternatives", lang, options=lines)
    if policy:
        turn.replies[-1] += "\n" + policy
    turn.interactive[len(turn.replies) - 1] = taps.options_list(
        ref,
        [
            (
                f"{alt.stay.checkin:%d/%m}-{alt.stay.checkout:%d/%m} {alt.name}",
                replies.money(alt.total_cents, prop.currency, lang),
            )
            for alt in nearby
        ],
        lang,
    )
    turn.state = "quoted"
    return turn


def _quoted(
    prop: Property, turn: Turn, stay: Stay, found: list[Offer], ref: str, policy: str
) -> Turn:
    lang = turn.language
    turn.context["quote_id"] = ref
    turn.context["options"] = [
        {
            "units": [{"room_type_id": u.room_type_id, **p.as_json()} for u, p in o.units],
            "name": o.name,
            "total_cents": o.total_cents,
        }
        for o in found
    ]
    lines = "\n".join(
        replies.render(
            "quote_line",
            lang,
            n=n,
            room=_priced_name(o, prop, lang),
            nightly=replies.money(o.total_cents // stay.nights, prop.currency, lang),
            total=replies.money(o.total_cents, prop.currency, lang),
        )
        for n, o in enumerate(found, start=1)
    )
    turn.state = "quoted"
    shown = [(o.name, replies.money(o.total_cents, prop.currency, lang)) for o in found]
    turn.say_with(
        taps.options_list(ref, shown, lang),
        "quote",
        party=_party(turn.context["stay"], lang),
        checkin=replies.day(stay.checkin, lang),
        checkout=replies.day(stay.checkout, lang),
        nights=stay.nights,
        options=lines,
    )
    if policy:
        turn.replies[-1] += "\n" + policy
    return turn


async def _book(
    services: Services,
    conv: Conversation,
    turn: Turn,
    option: dict[str, Any],
    message_id: str,
) -> Turn:
    prop = conv.property
    lang = turn.language
    stay_fields = turn.context["stay"]
    if "checkin" in option:  # a nearby stay offered instead of the one asked for
        stay_fields.update(checkin=option["checkin"], checkout=option["checkout"])
    stay = Stay(
        dt.date.fromisoformat(stay_fields["checkin"]),
        dt.date.fromisoformat(stay_fields["checkout"]),
        int(stay_fields["guests"]),
    )
    previous = turn.context.get("hold_id")
    if previous is not None:
        # At most one pending hold per conversation: a new "yes" replaces the old one.
        await actions.cancel(services, previous, "replaced")
        turn.context.pop("hold_id")
    request = HoldRequest(
        property_id=prop.id,
        stay=stay,
        units=_units(option, stay_fields),
        idempotency_key=f"whatsapp:{message_id}",
        conversation_id=conv.id,
    )
    try:
        booking = await actions.hold_and_pay(services, request)
    except NothingAvailable:
        turn.state = "requote"
        turn.context.pop("options", None)
        return turn.say("sold_out")
    except Conflict:  # the hold ended between its creation and its Checkout Session
        turn.state = "requote"
        return turn.say("failed")
    turn.context["hold_id"] = str(booking.hold.id)
    turn.context.pop("options", None)
    turn.state = "awaiting_payment"
    # The link closes CHECKOUT_GRACE_SECONDS before the hold expires (and its expiry then
    # cancels the hold): that is the deadline the guest can act on.
    deadline = booking.checkout.expires_at.astimezone(ZoneInfo(prop.timezone))
    return turn.say_with(
        taps.cancel_hold(str(booking.hold.id), lang),
        "payment_link",
        room=option["name"],
        checkin=replies.day(stay.checkin, lang),
        checkout=replies.day(stay.checkout, lang),
        total=replies.money(booking.hold.total_cents, booking.hold.currency, lang),
        deadline=replies.moment(deadline, lang),
        url=booking.checkout.url,
    )


def _units(option: dict[str, Any], stay: dict[str, Any]) -> tuple[Unit, ...]:
    """The units an option shown holds, each with its party; an option shown before
    parties per unit (one room type, the whole party) is one unit."""
    if "units" not in option:
        return (Unit(int(option["room_type_id"]), _party_of(stay)),)
    return tuple(
        Unit(int(u["room_type_id"]), Party(int(u["adults"]), tuple(u["children_ages"])))
        for u in option["units"]
    )


async def notify(
    conn: asyncpg.Connection, conv: Conversation, event_type: str, payload: dict[str, Any]
) -> Turn:
    """The guest's side of a hold or reservation fact; no reply when it is not theirs to hear."""
    context = dict(conv.context)
    turn = Turn(conv.language or replies.DEFAULT_LANGUAGE, conv.state, context)
    hold_id = str(payload.get("hold_id"))
    current = context.get("hold_id") == hold_id
    hold = await actions.hold_dates(conn, hold_id)
    if hold is None:
        return turn
    lang = turn.language
    dates = {
        "checkin": replies.day(hold["checkin"], lang),
        "checkout": replies.day(hold["checkout"], lang),
    }
    if event_type == "reservation.confirmed":
        if current:
            context.pop("hold_id")
            context["reservation_code"] = payload.get("code")
            turn.state = "booked"
        code = str(payload.get("code"))
        tiers = await conn.fetch(QUERIES["cancellation_tiers"], conv.property.id)
        policy = [(t["days_before"], t["refund_percent"]) for t in tiers]
        return turn.say_templated(
            "confirmed",
            [code, dates["checkin"], dates["checkout"]],
            code=code,
            room_line=replies.render("stay_line", lang, **dates)
            + replies.policy_line(policy, lang),
        )
    if event_type == "reservation.cancelled":
        code = str(payload.get("code"))
        if context.get("reservation_code") == code:
            context.pop("reservation_code")
            turn.state = "new"
        refund = int(payload.get("refund_cents") or 0)
        amount = replies.money(refund, str(payload.get("currency")), lang)
        refund_line = (
            replies.render("refund_line", lang, amount=amount)
            if refund
            else replies.render("no_refund_line", lang)
        )
        return turn.say_templated(
            "cancelled",
            [code, dates["checkin"], dates["checkout"], amount],
            code=code,
            refund_line=refund_line,
            **dates,
        )
    answered = payload.get("reason") in GUEST_CANCEL_REASONS
    if event_type in ("hold.expired", "hold.cancelled") and current and not answered:
        # Only the guest's current hold, and not one the guest's own message cancelled or
        # replaced (that turn answers it, and may not be saved yet when this runs).
        context.pop("hold_id")
        turn.state = "requote"
        if payload.get("reason") == "payment_failed":  # a delayed method was declined
            return turn.say("payment_declined", **dates)
        return turn.say_templated("hold_ended", [dates["checkin"], dates["checkout"]], **dates)
    return turn
