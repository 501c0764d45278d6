-- repair_ari_lock_timeout --
-- How long the repair waits for a night another transaction holds before giving up (Busy):
-- every claim holds its nights for one round trip, so only a stuck transaction takes this.
SET LOCAL lock_timeout = '5s'

-- repair_ari_lock --
-- Lock every night of property $1 in (room type, date) order, the order create_hold and
-- release_hold_nights take theirs in: the repair queues behind them, never across them.
SELECT count(*) FROM (
    SELECT a.id FROM ari_days a
    WHERE a.property_id = $1
    ORDER BY a.room_type_id, a.date
    FOR NO KEY UPDATE OF a
) AS locked

-- repair_ari_facts --
-- The nights of property $1 whose counters are not what their facts make them, with both:
-- held = nights of active holds, booked = nights of confirmed reservations, blocked =
-- nights of active blocks (the definitions of docs/operations/sql/reconcile_ari_vs_holds.sql,
-- matched by room type as it does). Run after repair_ari_lock, in a statement of its own,
-- so it reads every fact committed before the locks were granted.
WITH room_types_of AS (
    SELECT rt.id, rt.code FROM room_types rt WHERE rt.property_id = $1
), held AS (
    SELECT n.room_type_id, n.date, sum(n.qty) AS qty
    FROM hold_nights n
    JOIN holds h ON h.id = n.hold_id
    JOIN room_types_of rt ON rt.id = n.room_type_id
    WHERE h.status = 'active'
    GROUP BY n.room_type_id, n.date
), booked AS (
    SELECT n.room_type_id, n.date, sum(n.qty) AS qty
    FROM hold_nights n
    JOIN reservations r ON r.hold_id = n.hold_id
    JOIN room_types_of rt ON rt.id = n.room_type_id
    WHERE r.status = 'confirmed'
    GROUP BY n.room_type_id, n.date
), blocked AS (
    SELECT n.room_type_id, n.date, sum(n.qty) AS qty
    FROM block_nights n
    JOIN blocks b ON b.id = n.block_id
    JOIN room_types_of rt ON rt.id = n.room_type_id
    WHERE b.status = 'active'
    GROUP BY n.room_type_id, n.date
)
SELECT a.id, rt.code AS room_type, a.date, a.inv_total,
       a.inv_held, coalesce(held.qty, 0)::integer AS held,
       a.inv_booked, coalesce(booked.qty, 0)::integer AS booked,
       a.inv_blocked, coalesce(blocked.qty, 0)::integer AS blocked
FROM ari_days a
JOIN room_types_of rt ON rt.id = a.room_type_id
LEFT JOIN held ON held.room_type_id = a.room_type_id AND held.date = a.date
LEFT JOIN booked ON booked.room_type_id = a.room_type_id AND booked.date = a.date
LEFT JOIN blocked ON blocked.room_type_id = a.room_type_id AND blocked.date = a.date
WHERE a.inv_held <> coalesce(held.qty, 0)
   OR a.inv_booked <> coalesce(booked.qty, 0)
   OR a.inv_blocked <> coalesce(blocked.qty, 0)
   OR coalesce(held.qty, 0) + coalesce(booked.qty, 0) + coalesce(blocked.qty, 0) > a.inv_total
ORDER BY a.room_type_id, a.date

-- repair_ari_update --
-- Set the counters of these nights (ids $1) to their facts ($2 held, $3 booked, $4 blocked).
UPDATE ari_days a
SET inv_held = f.held, inv_booked = f.booked, inv_blocked = f.blocked
FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::integer[])
     AS f (id, held, booked, blocked)
WHERE a.id = f.id
