-- The inn's console (app/console/). The public role reads here and records what the
-- worker will do; only the worker changes calendars, reservations and conversations.

-- console_staff_inns --
-- The inns a staff number belongs to, the one it was registered with first first.
SELECT p.id, p.code, p.name
FROM staff_numbers s JOIN properties p ON p.id = s.property_id
WHERE s.contact_hash = $1
ORDER BY s.created_at, p.id

-- console_count_attempt --
-- One more attempt by $1 in the current $2-second window; returns the window's count.
INSERT INTO console_attempts (subject, window_start)
VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) / $2) * $2))
ON CONFLICT ON CONSTRAINT console_attempts_pkey
DO UPDATE SET count = console_attempts.count + 1
RETURNING count

-- console_put_code --
-- The number's one live code: a new one replaces any other.
INSERT INTO console_codes (contact_hash, property_id, code_hmac, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (contact_hash)
DO UPDATE SET property_id = EXCLUDED.property_id, code_hmac = EXCLUDED.code_hmac,
              attempts = 0, created_at = now(), expires_at = EXCLUDED.expires_at

-- console_try_code --
-- One try of the number's live code, counted under its row lock: the code row is deleted
-- when it matches (it cannot be replayed) or at its fifth wrong try. Returns whether it
-- matched, or nothing when there is no live code.
WITH live AS (
    SELECT contact_hash, code_hmac = $2 AS matched, attempts
    FROM console_codes
    WHERE contact_hash = $1 AND expires_at > now() AND attempts < 5
    FOR UPDATE
), counted AS (
    UPDATE console_codes c SET attempts = c.attempts + 1
    FROM live
    WHERE c.contact_hash = live.contact_hash AND NOT live.matched AND live.attempts + 1 < 5
), spent AS (
    DELETE FROM console_codes c USING live
    WHERE c.contact_hash = live.contact_hash
      AND (live.matched OR live.attempts + 1 >= 5)
)
SELECT matched FROM live

-- console_open_session --
INSERT INTO console_sessions (id_hash, contact_hash, csrf_token, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))

-- console_session --
-- A live session whose member is still staff somewhere.
SELECT s.contact_hash, s.csrf_token
FROM console_sessions s
WHERE s.id_hash = $1 AND s.expires_at > now()
  AND EXISTS (SELECT 1 FROM staff_numbers n WHERE n.contact_hash = s.contact_hash)

-- console_close_session --
DELETE FROM console_sessions WHERE id_hash = $1

-- console_member_inn --
-- The inn of code $2 when $1 is one of its staff; nothing otherwise (the console's 404).
SELECT p.id, p.code, p.name, p.timezone, p.currency, p.whatsapp_phone_number_id, p.settings
FROM properties p JOIN staff_numbers s ON s.property_id = p.id AND s.contact_hash = $1
WHERE p.code = $2

-- console_record_command --
-- A change asked for, once per form token (a resubmitted form finds the first).
INSERT INTO console_commands (property_id, contact_hash, form_token, command, arguments)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT ON CONSTRAINT console_commands_form_token_key
DO UPDATE SET form_token = EXCLUDED.form_token
RETURNING id, property_id = $1 AND contact_hash = $2 AS ours

-- console_command --
SELECT c.id, c.property_id, p.code AS property_code, c.contact_hash, c.command, c.arguments,
       c.status, c.result, c.created_at, c.finished_at
FROM console_commands c JOIN properties p ON p.id = c.property_id
WHERE c.id = $1

-- console_finish_command --
UPDATE console_commands SET status = $2, result = $3, finished_at = now()
WHERE id = $1 AND status = 'queued'

-- console_conversation_property --
SELECT property_id FROM conversations WHERE id = $1

-- console_release_to_bot --
-- The staff hand the conversation back: the bot answers its next message.
UPDATE conversations SET state = 'collecting', context = context - 'human_since',
                         updated_at = now()
WHERE id = $1 AND state = 'human'
RETURNING id

-- property_of_id --
SELECT id, code, name, timezone, currency, whatsapp_phone_number_id, settings
FROM properties WHERE id = $1

-- console_calendar --
-- Each room type's nights from $2 for $3 days: free, held, booked, blocked (a channel's or
-- the inn's), the price and the stay rules of each (read by position: pages._cells).
SELECT rt.code, rt.name, a.date, a.inv_total,
       a.inv_total - a.inv_held - a.inv_booked - a.inv_blocked AS free,
       a.inv_held AS held, a.inv_booked AS booked, a.inv_blocked AS blocked,
       a.rate_cents, a.min_stay, a.max_stay, a.stop_sell, a.closed_to_arrival,
       a.closed_to_departure
FROM room_types rt
JOIN ari_days a ON a.room_type_id = rt.id AND a.date >= $2 AND a.date < $2 + $3::integer
WHERE rt.property_id = $1
ORDER BY rt.id, a.date

-- console_handed_off --
-- Conversations the staff have (handed off), most recent first.
SELECT c.id, c.language, c.updated_at, c.context ->> 'human_since' AS since
FROM conversations c
WHERE c.property_id = $1 AND c.state = 'human'
ORDER BY c.updated_at DESC
LIMIT 50

-- console_transcript --
-- One conversation's messages, oldest first (the last 200).
SELECT direction, body_encrypted, created_at FROM (
    SELECT m.direction, m.body_encrypted, m.created_at
    FROM messages m JOIN conversations c ON c.id = m.conversation_id
    WHERE c.id = $2 AND c.property_id = $1
    ORDER BY m.created_at DESC
    LIMIT 200
) AS last ORDER BY created_at

-- console_reservations --
-- Reservations of the property, newest stay first, 50 a page after the cursor ($5, $6):
-- what was searched ($2) as a code or as guest name words ($3, the blind index), a date
-- in the stay ($4).
SELECT r.code, r.status, r.checkin, r.checkout, r.guests, r.total_cents, r.currency,
       r.guest_name_sealed
FROM reservations r
WHERE r.property_id = $1
  AND ($2::text IS NULL OR r.code = upper($2) OR r.guest_name_index @> $3::text[])
  AND ($4::date IS NULL OR (r.checkin <= $4 AND r.checkout > $4))
  AND ($5::date IS NULL OR (r.checkin, r.code) < ($5, $6::text))
ORDER BY r.checkin DESC, r.code DESC
LIMIT 51

-- console_reservation --
SELECT r.id, r.code, r.status, r.checkin, r.checkout, r.guests, r.total_cents, r.currency,
       r.guest_name_sealed, r.created_at, r.cancelled_at, r.cancel_reason,
       p.status AS payment_status, p.amount_cents AS paid_cents, p.refunded_cents
FROM reservations r JOIN payments p ON p.id = r.payment_id
WHERE r.property_id = $1 AND r.code = $2

-- console_refunds --
SELECT f.amount_cents, f.status, f.reason, f.created_at
FROM refunds f WHERE f.reservation_id = $1 ORDER BY f.created_at

-- console_channels --
SELECT c.id, c.name, rt.code AS room_type, c.import_url_sealed IS NOT NULL AS imports,
       c.last_attempt_at, c.last_success_at, c.last_error, c.consecutive_failures,
       c.event_count, c.exported_at,
       (SELECT count(*) FROM blocks b
        WHERE b.calendar_id = c.id AND cardinality(b.conflict_nights) > 0)
           AS conflicts
FROM calendars c JOIN room_types rt ON rt.id = c.room_type_id
WHERE c.property_id = $1
ORDER BY c.name

-- message_by_dedupe_key --
SELECT id FROM messages WHERE dedupe_key = $1
