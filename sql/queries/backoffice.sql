-- audit_insert --
-- One row per back-office command: who, what (arguments without PII), what came of it.
INSERT INTO audit_log (property_id, actor, command, arguments, result, correlation_id)
VALUES ($1, $2, $3, $4, $5, $6)

-- claim_command_key --
-- A back-office command applied under a key (a desk confirmation): the first claims it; a
-- concurrent one waits here for it to commit, then finds it taken.
INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT ON CONSTRAINT idempotency_keys_scope_key_key DO NOTHING
RETURNING id

-- command_key_result --
SELECT response FROM idempotency_keys WHERE scope = $1 AND key = $2

-- record_command_key --
UPDATE idempotency_keys SET response = $3 WHERE scope = $1 AND key = $2

-- room_type_of_property --
SELECT id, code, name FROM room_types WHERE property_id = $1 AND code = $2

-- room_types_of_property --
SELECT code, name FROM room_types WHERE property_id = $1 ORDER BY code

-- cancellation_tiers --
-- The policy, most days first: the first tier a cancellation reaches applies.
SELECT days_before, refund_percent FROM cancellation_tiers
WHERE property_id = $1
ORDER BY days_before DESC

-- reservation_to_cancel --
-- The reservation (locked: a cancel decides under it) with its payment and stay.
SELECT r.id, r.code, r.status, r.checkin, r.checkout, r.total_cents, r.currency, r.hold_id,
       r.payment_id, p.provider, p.amount_cents AS paid_cents, p.refunded_cents,
       h.conversation_id
FROM reservations r
JOIN payments p ON p.id = r.payment_id
JOIN holds h ON h.id = r.hold_id
WHERE r.property_id = $1 AND r.code = $2
FOR UPDATE OF r

-- reservation_nights --
-- The nights a reservation owns (its hold's), by room type and date.
SELECT t.code AS room_type, n.date, n.qty
FROM hold_nights n JOIN room_types t ON t.id = n.room_type_id
WHERE n.hold_id = $1
ORDER BY n.room_type_id, n.date

-- release_reservation_nights --
-- A cancelled reservation gives its nights back: locked in (room type, date) order.
WITH locked AS (
    SELECT a.id, n.qty
    FROM ari_days a
    JOIN hold_nights n ON n.room_type_id = a.room_type_id AND n.date = a.date
    WHERE n.hold_id = $1
    ORDER BY a.room_type_id, a.date
    FOR NO KEY UPDATE OF a
)
UPDATE ari_days a SET inv_booked = a.inv_booked - l.qty
FROM locked l WHERE a.id = l.id

-- mark_reservation_cancelled --
UPDATE reservations SET status = 'cancelled', cancelled_at = now(), cancel_reason = $2
WHERE id = $1

-- insert_refund --
-- A refund we give ($5: why): pending until its task has Stripe make it; for a payment
-- made at the desk, returned there (and counted as refunded at once).
WITH refund AS (
    INSERT INTO refunds (id, payment_id, reservation_id, amount_cents, reason, status,
                         idempotency_key)
    SELECT r.id, $1, $2, $3, $5,
           CASE WHEN $4 = 'offline' THEN 'offline' ELSE 'pending' END, 'refund-' || r.id
    FROM (SELECT gen_random_uuid() AS id) AS r
    RETURNING id, status
), counted AS (
    UPDATE payments p SET refunded_cents = p.refunded_cents + $3, updated_at = now()
    FROM refund WHERE p.id = $1 AND refund.status = 'offline'
)
SELECT id, status FROM refund

-- insert_outbox --
INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
VALUES ($1, $2, $3, $4, $5)
RETURNING id

-- ari_nights_to_block --
-- The nights of a range (locked, in date order) and what each has free.
SELECT a.date, a.inv_total - a.inv_held - a.inv_booked - a.inv_blocked AS free
FROM ari_days a
WHERE a.room_type_id = $1 AND a.date >= $2 AND a.date < $3
ORDER BY a.date
FOR NO KEY UPDATE OF a

-- manual_blocked_nights --
-- The units blocked by hand on each night of a range.
SELECT a.date, coalesce(sum(n.qty), 0)::integer AS blocked
FROM ari_days a
LEFT JOIN block_nights n ON n.room_type_id = a.room_type_id AND n.date = a.date
     AND n.block_id IN (SELECT b.id FROM blocks b
                        WHERE b.room_type_id = $1 AND b.source = 'manual' AND b.status = 'active')
WHERE a.room_type_id = $1 AND a.date >= $2 AND a.date < $3
GROUP BY a.date
ORDER BY a.date

-- insert_manual_block --
-- A block set by hand owns its units on every night of the range (checked free, locked).
WITH block AS (
    INSERT INTO blocks (property_id, room_type_id, source, checkin, checkout, units)
    VALUES ($1, $2, 'manual', $3, $4, $5)
    RETURNING id
), owned AS (
    INSERT INTO block_nights (block_id, room_type_id, date, qty)
    SELECT block.id, $2, d::date, $5
    FROM block, generate_series($3::date, $4::date - 1, interval '1 day') AS d
)
UPDATE ari_days a SET inv_blocked = a.inv_blocked + $5
FROM block
WHERE a.room_type_id = $2 AND a.date >= $3 AND a.date < $4
RETURNING block.id

-- remove_manual_units --
-- Takes $4 units off each night of [$2, $3) from the room type's manual blocks, newest
-- block first (the caller has locked the nights and checked they hold that many).
WITH owned AS (
    SELECT n.block_id, n.date, n.qty,
           sum(n.qty) OVER (PARTITION BY n.date ORDER BY n.block_id DESC) - n.qty AS before
    FROM block_nights n JOIN blocks b ON b.id = n.block_id
    WHERE b.room_type_id = $1 AND b.source = 'manual' AND b.status = 'active'
      AND n.date >= $2 AND n.date < $3
), taken AS (
    SELECT block_id, date, qty, least(qty, greatest(0, $4 - before)) AS take
    FROM owned
), reduced AS (
    UPDATE block_nights n SET qty = n.qty - t.take
    FROM taken t
    WHERE n.block_id = t.block_id AND n.date = t.date AND t.take > 0 AND t.take < t.qty
), deleted AS (
    DELETE FROM block_nights n USING taken t
    WHERE n.block_id = t.block_id AND n.date = t.date AND t.take = t.qty
)
UPDATE ari_days a SET inv_blocked = a.inv_blocked - $4
WHERE a.room_type_id = $1 AND a.date >= $2 AND a.date < $3

-- release_empty_manual_blocks --
-- A manual block left without nights has given them all back.
UPDATE blocks b SET status = 'released', released_at = now(), updated_at = now()
WHERE b.room_type_id = $1 AND b.source = 'manual' AND b.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM block_nights n WHERE n.block_id = b.id)

-- reservation_of_hold_key --
-- The reservation a hold created under this key became (a walk-in applied before).
SELECT r.code FROM holds h JOIN reservations r ON r.hold_id = h.id
WHERE h.property_id = $1 AND h.create_idempotency_key = $2

-- set_guest_name --
-- A walk-in's guest name: sealed, and its blind index to find it by.
UPDATE reservations SET guest_name_sealed = $2, guest_name_index = $3 WHERE id = $1

-- reservation_detail --
-- A reservation of the property, by code, as staff see it.
SELECT r.id, r.code, r.status, r.checkin, r.checkout, r.guests, r.total_cents, r.currency,
       r.created_at, r.cancelled_at, r.guest_name_sealed, p.provider, p.status AS payment_status,
       p.refunded_cents, p.dispute_status,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'room_type', t.code, 'adults', u.adults, 'children_ages', u.children_ages,
                   'total_cents', u.total_cents) ORDER BY u.unit), '[]')
        FROM reservation_units u JOIN room_types t ON t.id = u.room_type_id
        WHERE u.reservation_id = r.id) AS units
FROM reservations r JOIN payments p ON p.id = r.payment_id
WHERE r.property_id = $1 AND r.code = $2

-- reservations_by_name --
-- Reservations whose guest name has every word searched for (blind index: $2 are HMACs).
SELECT r.code FROM reservations r
WHERE r.property_id = $1 AND r.guest_name_index @> $2::text[]
ORDER BY r.checkin, r.code
LIMIT 20

-- reservations_of_day --
-- A day at the inn: who arrives, who leaves, who sleeps there (confirmed reservations).
SELECT r.code, r.checkin, r.checkout, r.guests, r.guest_name_sealed,
       CASE WHEN r.checkin = $2 THEN 'arrival'
            WHEN r.checkout = $2 THEN 'departure'
            ELSE 'in_house' END AS kind,
       (SELECT string_agg(t.code, ',' ORDER BY u.unit)
        FROM reservation_units u JOIN room_types t ON t.id = u.room_type_id
        WHERE u.reservation_id = r.id) AS rooms
FROM reservations r
WHERE r.property_id = $1 AND r.status = 'confirmed'
  AND r.checkin <= $2 AND r.checkout >= $2
ORDER BY kind, r.checkin, r.code

-- holds_awaiting_payment --
-- Active holds of the property, soonest to expire first.
SELECT h.id, h.checkin, h.checkout, h.guests, h.total_cents, h.currency, h.expires_at,
       h.conversation_id
FROM holds h
WHERE h.property_id = $1 AND h.status = 'active'
ORDER BY h.expires_at

-- open_conflicts_of_property --
SELECT b.id AS block_id, c.name AS calendar, t.code AS room_type, b.checkin, b.checkout,
       b.conflict_nights, b.conflict_since
FROM blocks b
JOIN calendars c ON c.id = b.calendar_id
JOIN room_types t ON t.id = b.room_type_id
WHERE b.property_id = $1 AND b.status = 'active' AND b.conflict_nights <> '{}'
ORDER BY b.conflict_since

-- hold_for_link --
-- The guest's active hold, by (a prefix of) its id or the guest's contact, with its
-- latest Checkout Session and the conversation to send the link to.
SELECT h.id, h.expires_at, h.total_cents, h.currency, h.checkin, h.checkout,
       h.conversation_id, c.language,
       (SELECT p.provider_object_id FROM payments p
        WHERE p.hold_id = h.id AND p.provider = 'stripe'
        ORDER BY p.created_at DESC LIMIT 1) AS session_id,
       (SELECT count(*) FROM payments p WHERE p.hold_id = h.id AND p.provider = 'stripe')
           AS sessions
FROM holds h
LEFT JOIN conversations c ON c.id = h.conversation_id
WHERE h.property_id = $1 AND h.status = 'active'
  AND (($2 <> '' AND h.id::text LIKE $2 || '%') OR c.contact_hash = $3)
ORDER BY h.created_at DESC
LIMIT 1

-- extend_hold --
-- An active hold kept at least until $2 (never shortened).
UPDATE holds SET expires_at = greatest(expires_at, $2)
WHERE id = $1 AND status = 'active'
RETURNING expires_at
