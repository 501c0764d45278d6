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
-- The nights of property $1 whose counters are not what their facts (the view
-- ari_night_facts, which the reconcile check reads too) make them, with both. Run after
-- repair_ari_lock, in a statement of its own, so it reads every fact committed before the
-- locks were granted.
SELECT a.id, rt.code AS room_type, a.date, a.inv_total,
       a.inv_held, coalesce(f.held, 0) AS held,
       a.inv_booked, coalesce(f.booked, 0) AS booked,
       a.inv_blocked, coalesce(f.blocked, 0) AS blocked
FROM ari_days a
JOIN room_types rt ON rt.id = a.room_type_id
LEFT JOIN ari_night_facts f ON f.room_type_id = a.room_type_id AND f.date = a.date
WHERE a.property_id = $1
  AND (a.inv_held <> coalesce(f.held, 0)
       OR a.inv_booked <> coalesce(f.booked, 0)
       OR a.inv_blocked <> coalesce(f.blocked, 0)
       OR coalesce(f.held, 0) + coalesce(f.booked, 0) + coalesce(f.blocked, 0) > a.inv_total)
ORDER BY a.room_type_id, a.date

-- repair_ari_update --
-- Set the counters of these nights (ids $1) to their facts ($2 held, $3 booked, $4 blocked).
UPDATE ari_days a
SET inv_held = f.held, inv_booked = f.booked, inv_blocked = f.blocked
FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::integer[])
     AS f (id, held, booked, blocked)
WHERE a.id = f.id
