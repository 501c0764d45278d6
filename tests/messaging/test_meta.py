"""Meta envelopes and signatures, and the PII seal, without a server."""

from __future__ import annotations

import base64

import orjson
import pytest

from app.dev.fake_graph import inbound_envelope, signature
from app.errors import BadRequest, Unauthorized
from app.messaging.meta import parse_envelope, verify_signature
from app.pii import PiiKeys, SealBroken, pii_keys
from app.settings import Secret, Settings

SECRET = "app-secret"


def test_signature_accepts_meta_and_refuses_the_rest() -> None:
    body = orjson.dumps(inbound_envelope("pn", "5511999990000", "oi"))
    verify_signature(body, signature(body, SECRET), SECRET)
    for header in (None, "", "sha1=abc", signature(body, "other"), signature(body + b" ", SECRET)):
        with pytest.raises(Unauthorized):
            verify_signature(body, header, SECRET)


def test_every_entry_change_and_message_is_read() -> None:
    first = inbound_envelope("pn-a", "5511900000001", "oi", message_id="wamid.A")
    second = inbound_envelope("pn-b", "5511900000002", "olá", message_id="wamid.B")
    value = first["entry"][0]["changes"][0]["value"]
    value["messages"].append({**value["messages"][0], "id": "wamid.A2"})
    value["statuses"] = [
        {"id": "wamid.OUT", "status": "delivered", "recipient_id": "5511900000001"},
        {"id": "wamid.OUT2", "status": "deleted"},
    ]
    first["entry"].append(second["entry"][0])
    envelope = parse_envelope(orjson.dumps(first))
    assert [m.message_id for m in envelope.messages] == ["wamid.A", "wamid.A2", "wamid.B"]
    assert [m.phone_number_id for m in envelope.messages] == ["pn-a", "pn-a", "pn-b"]
    assert [(s.message_id, s.status) for s in envelope.statuses] == [("wamid.OUT", "delivered")]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"entry": {}}',
        b'{"entry": [1]}',
        b'{"entry": [{"changes": [{"field": "messages"}]}]}',
        b'{"entry": [{"changes": [{"field": "messages", "value": {"messages": [{}]}}]}]}',
        b'{"entry": [{"changes": [{"field": "messages", "value": {"metadata":'
        b' {"phone_number_id": "pn"}, "messages": [{"id": "wamid.X"}]}}]}]}',
    ],
)
def test_malformed_envelopes_are_refused(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_envelope(body)


def test_irrelevant_changes_are_empty_not_errors() -> None:
    body = (
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":'
        b' "account_update", "value": {"event": "X"}}]}]}'
    )
    envelope = parse_envelope(body)
    assert envelope.messages == () and envelope.statuses == ()


def _keys() -> PiiKeys:
    return pii_keys(
        Settings(
            database_url=Secret("postgresql://x"),
            pii_key=Secret(base64.b64encode(b"p" * 32).decode()),
            contact_hash_key=Secret(base64.b64encode(b"h" * 32).decode()),
        )
    )


def test_seal_round_trip_is_bound_to_its_purpose() -> None:
    keys = _keys()
    sealed = keys.seal("+55 11 99999-0000", "whatsapp:wamid.A")
    assert "99999" not in sealed
    assert keys.unseal(sealed, "whatsapp:wamid.A") == "+55 11 99999-0000"
    for wrong in ("whatsapp:wamid.B", "phone"):
        with pytest.raises(SealBroken):
            keys.unseal(sealed, wrong)
    with pytest.raises(SealBroken):
        keys.unseal("garbage!!", "whatsapp:wamid.A")


def test_contact_hash_ignores_formatting_and_needs_the_key() -> None:
    keys = _keys()
    assert keys.contact_hash("+55 (11) 99999-0000") == keys.contact_hash("5511999990000")
    assert "5511999990000" not in keys.contact_hash("5511999990000")
