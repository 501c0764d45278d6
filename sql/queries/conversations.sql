-- upsert_contact --
-- The guest's number is stored once, encrypted; its hash is the identity everywhere else.
INSERT INTO contacts (contact_hash, phone_encrypted) VALUES ($1, $2)
ON CONFLICT ON CONSTRAINT contacts_contact_hash_key DO NOTHING

-- upsert_conversation --
INSERT INTO conversations (property_id, contact_hash) VALUES ($1, $2)
ON CONFLICT ON CONSTRAINT conversations_property_id_contact_hash_key
DO UPDATE SET updated_at = conversations.updated_at
RETURNING id

-- lease_conversation --
-- Take the conversation for one task; nothing when another task holds it.
UPDATE conversations SET lease_until = now() + make_interval(secs => $2)
WHERE id = $1 AND (lease_until IS NULL OR lease_until < now())
RETURNING state, language, context

-- release_conversation --
UPDATE conversations SET lease_until = NULL WHERE id = $1

-- save_conversation --
UPDATE conversations
SET state = $2, language = $3, context = $4, updated_at = now(),
    -- The guest's last message opens WhatsApp's 24-hour customer-service window.
    last_inbound_at = CASE WHEN $5 THEN now() ELSE last_inbound_at END
WHERE id = $1

-- insert_message --
-- A message of the conversation; a replayed task writes nothing twice (dedupe_key).
-- $6: when the message was received (inbound) or now() (a reply); $7: the template a reply
-- goes out as outside the 24-hour window (NULL: it cannot); $8: the correlation id; $9: its
-- tap-to-choose form on Meta (NULL: a plain text).
INSERT INTO messages (conversation_id, direction, body_encrypted, provider_message_id,
                      dedupe_key, status, created_at, template, correlation_id, interactive)
VALUES ($1, $2, $3, $4, $5, CASE WHEN $2 = 'in' THEN 'received' ELSE 'queued' END,
        coalesce($6, now()), $7, $8, $9)
ON CONFLICT ON CONSTRAINT messages_dedupe_key_key DO NOTHING
RETURNING id

-- queue_reply --
-- The reply's send task, through the outbox: relayed after commit, re-relayed if lost.
INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
VALUES ('message.queued', 'message', $1::uuid::text,
        jsonb_build_object('message_id', $1::uuid, 'conversation_id', $2::uuid), $3)
RETURNING id

-- property_of_conversation --
SELECT p.id, p.code, p.name, p.timezone, p.currency, p.whatsapp_phone_number_id, p.settings
FROM conversations c JOIN properties p ON p.id = c.property_id WHERE c.id = $1

-- outbox_event --
SELECT event_type, payload FROM outbox_events WHERE id = $1

-- transcript --
-- Every message of a contact, oldest first (the dev transcript command).
SELECT m.created_at, m.direction, m.body_encrypted
FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE c.contact_hash = $1
ORDER BY m.seq

-- inn_capacity --
-- The most guests the inn hosts at once: each room type's occupancy times its rooms (the
-- most it has on any night from $2 on).
SELECT sum(rt.max_occupancy * rooms.total)
FROM room_types rt
CROSS JOIN LATERAL (
    SELECT max(a.inv_total) AS total FROM ari_days a WHERE a.room_type_id = rt.id AND a.date >= $2
) rooms
WHERE rt.property_id = $1

-- hold_stay --
SELECT checkin, checkout, status FROM holds WHERE id = $1

-- staff_of_property --
SELECT contact_hash FROM staff_numbers WHERE property_id = $1 ORDER BY contact_hash

-- is_staff --
SELECT EXISTS (SELECT 1 FROM staff_numbers WHERE property_id = $1 AND contact_hash = $2)

-- handed_off --
-- The conversation a staff member's "#bot" means: the one whose id starts with $2, or
-- else the one handed to the staff most recently.
SELECT id FROM conversations
WHERE property_id = $1 AND state = 'human' AND ($2 = '' OR id::text LIKE $2 || '%')
ORDER BY updated_at DESC
LIMIT 1

-- release_to_bot --
UPDATE conversations SET state = 'collecting', context = context - 'human_since',
                         updated_at = now()
WHERE id = $1 AND state = 'human'

-- guest_contact --
SELECT k.phone_encrypted, c.context, c.language
FROM conversations c JOIN contacts k ON k.contact_hash = c.contact_hash WHERE c.id = $1

-- reservation_summary --
-- What the staff's "new reservation" notice says: code, dates, party, total, room names.
SELECT r.code, r.checkin, r.checkout, r.guests, r.total_cents, r.currency,
       (SELECT string_agg(DISTINCT rt.name, ', ') FROM hold_nights n
        JOIN room_types rt ON rt.id = n.room_type_id WHERE n.hold_id = r.hold_id) AS rooms
FROM reservations r WHERE r.id = $1

-- insert_fact --
-- A fact of the conversation for the inn's staff (a handoff, a cancellation request).
INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
VALUES ($1, 'conversation', $2::uuid::text, $3, $4)
RETURNING id

-- lock_alias --
-- Serialize the resolution of one LID (two messages of one guest may arrive at once).
SELECT pg_advisory_xact_lock(hashtextextended($1, 0))

-- alias_contact --
-- The contact a LID's hash points at, if any.
SELECT contact_hash FROM contact_aliases WHERE alias_hash = $1

-- point_alias --
-- The LID's hash points at this contact from now on.
INSERT INTO contact_aliases (alias_hash, contact_hash) VALUES ($1, $2)
ON CONFLICT ON CONSTRAINT contact_aliases_pkey
DO UPDATE SET contact_hash = excluded.contact_hash, updated_at = now()
WHERE contact_aliases.contact_hash <> excluded.contact_hash

-- adopt_conversations --
-- A guest known by their LID alone until now gave their phone: their conversations move to
-- the phone's contact (where that contact has none with the same inn yet).
UPDATE conversations c SET contact_hash = $2, updated_at = now()
WHERE c.contact_hash = $1
  AND NOT EXISTS (SELECT 1 FROM conversations o
                  WHERE o.contact_hash = $2 AND o.property_id = c.property_id)
