"""The API's OpenAPI 3.1 document: every route of app/api/routes.py, what it takes and
every answer it gives (schemathesis holds the two to each other)."""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **more}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _list(item: str) -> dict[str, Any]:
    return _object(["data"], data={"type": "array", "items": _ref(item)})


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
DATE = {"type": "string", "format": "date"}
MOMENT = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Problem": _object(
        ["type", "title", "status", "detail"],
        type=STRING,
        title=STRING,
        status=INTEGER,
        detail=STRING,
    ),
    "Property": _object(
        ["code", "name", "timezone", "currency"],
        code=STRING,
        name=STRING,
        timezone=STRING,
        currency=STRING,
    ),
    "RoomType": _object(
        ["code", "name", "max_occupancy", "max_adults", "base_occupancy"],
        code=STRING,
        name=STRING,
        max_occupancy=INTEGER,
        max_adults=INTEGER,
        base_occupancy=_nullable("integer"),
    ),
    "Night": _object(
        ["room_type", "date", "total", "available", "held", "booked", "blocked", "rate_cents"],
        room_type=STRING,
        date=DATE,
        total=INTEGER,
        available=INTEGER,
        held=INTEGER,
        booked=INTEGER,
        blocked=INTEGER,
        rate_cents=INTEGER,
        extra_adult_cents=INTEGER,
        min_stay=_nullable("integer"),
        max_stay=_nullable("integer"),
        stop_sell=BOOLEAN,
        closed_to_arrival=BOOLEAN,
        closed_to_departure=BOOLEAN,
    ),
    "Hold": _object(
        ["id", "status", "checkin", "checkout", "guests", "total_cents", "currency"],
        id={"type": "string", "format": "uuid"},
        status={"enum": ["active", "expired", "cancelled", "converted"]},
        checkin=DATE,
        checkout=DATE,
        guests=INTEGER,
        total_cents=INTEGER,
        currency=STRING,
        expires_at=MOMENT,
        created_at=MOMENT,
    ),
    "Reservation": _object(
        ["code", "status", "checkin", "checkout", "guests", "total_cents", "currency"],
        code=STRING,
        status={"enum": ["confirmed", "cancelled"]},
        checkin=DATE,
        checkout=DATE,
        guests=INTEGER,
        total_cents=INTEGER,
        currency=STRING,
        created_at=MOMENT,
        cancelled_at=_nullable("string", format="date-time"),
        cancel_reason=_nullable("string"),
    ),
    "Calendar": _object(
        ["name", "room_type", "units", "imports"],
        name=STRING,
        room_type=STRING,
        units=INTEGER,
        imports=BOOLEAN,
        last_success_at=_nullable("string", format="date-time"),
        last_error=_nullable("string"),
    ),
    "Command": _object(
        ["id", "command", "status", "url"],
        id={"type": "string", "format": "uuid"},
        command=STRING,
        status={"enum": ["queued", "done", "refused"]},
        result={"type": ["object", "null"]},
        url=STRING,
    ),
    "RangeChange": {
        **_object(
            ["room_type", "checkin", "checkout"],
            room_type=STRING,
            checkin=DATE,
            checkout=DATE,
            rate_cents={"type": "integer", "minimum": 1, "maximum": 999_999_999},
            min_stay={"type": "integer", "minimum": 0, "maximum": 30},
        ),
        "additionalProperties": False,
    },
    "Block": {
        **_object(
            ["room_type", "checkin", "checkout"],
            room_type=STRING,
            checkin=DATE,
            checkout=DATE,
            units={"type": "integer", "minimum": 1, "maximum": 100},
        ),
        "additionalProperties": False,
    },
}
_PROBLEM = {"content": {"application/problem+json": {"schema": _ref("Problem")}}}
_REFUSALS = {
    str(status): {"description": description, **_PROBLEM}
    for status, description in (
        (400, "the request could not be used"),
        (401, "no live API key"),
        (403, "the key may not do this"),
        (404, "no such thing at the key's property"),
        (409, "the Idempotency-Key was used for another request, or is in progress"),
        (413, "the body is too large"),
        (429, "the key's rate limit; Retry-After says when to come back"),
    )
}


def _read(summary: str, schema: dict[str, Any], parameters: list[Any] | None = None) -> Any:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters or [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                **_REFUSALS,
            },
        }
    }


def _write(summary: str, body: str | None, parameters: list[Any] | None = None) -> Any:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [
            {"name": "Idempotency-Key", "in": "header", "required": True, "schema": STRING},
            *(parameters or []),
        ],
        "responses": {
            "202": {
                "description": "recorded; the worker runs it (GET its url for the result)",
                "content": {"application/json": {"schema": _ref("Command")}},
            },
            **_REFUSALS,
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return {"post": operation}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _path(name: str, schema: dict[str, Any] = STRING) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Hotelly inn API",
        "version": "1",
        "description": "One property per key (Authorization: Bearer hk_…). Changes are "
        "commands the worker runs: 202 with the command's URL. Every POST needs an "
        "Idempotency-Key. Errors are RFC 9457 problem documents.",
    },
    "servers": [{"url": "/"}],
    "security": [{"key": []}],
    "components": {
        "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}},
        "schemas": SCHEMAS,
    },
    "paths": {
        "/api/v1/property": _read("the key's property", _ref("Property")),
        "/api/v1/room-types": _read("its room types", _list("RoomType")),
        "/api/v1/ari": _read(
            "availability, rates and stay rules by night",
            _list("Night"),
            [_query("from", DATE, True), _query("to", DATE, True), _query("room_type", STRING)],
        ),
        "/api/v1/ari/changes": _write("change the rate or minimum stay of a range", "RangeChange"),
        "/api/v1/blocks": _write("take units of a range off sale", "Block"),
        "/api/v1/unblocks": _write("give back units blocked by hand", "Block"),
        "/api/v1/holds": _read(
            "holds, newest first (100)",
            _list("Hold"),
            [_query("status", {"enum": ["active", "expired", "cancelled", "converted"]})],
        ),
        "/api/v1/holds/{id}": _read("one hold", _ref("Hold"), [_path("id")]),
        "/api/v1/reservations": _read(
            "reservations, newest check-in first",
            {
                **_list("Reservation"),
                "properties": {
                    "data": {"type": "array", "items": _ref("Reservation")},
                    "next_cursor": _nullable("string"),
                },
            },
            [
                _query("status", {"enum": ["confirmed", "cancelled"]}),
                _query("checkin_from", DATE),
                _query("checkin_to", DATE),
                _query("cursor", STRING),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
            ],
        ),
        "/api/v1/reservations/{code}": _read(
            "one reservation", _ref("Reservation"), [_path("code")]
        ),
        "/api/v1/reservations/{code}/cancel": _write(
            "cancel, refunding what the policy gives", None, [_path("code")]
        ),
        "/api/v1/calendars": _read("the channels' calendars", _list("Calendar")),
        "/api/v1/commands/{id}": _read(
            "a command's status and result", _ref("Command"), [_path("id")]
        ),
    },
}
# The document itself needs no key.
DOCUMENT["paths"]["/api/v1/openapi.json"] = {
    "get": {
        "summary": "this document",
        "security": [],
        "responses": {"200": {"description": "OK", "content": {"application/json": {}}}},
    }
}
