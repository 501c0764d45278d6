-- Nights whose counters disagree with the holds, reservations and blocks that own them, or
-- are out of bounds. inv_held must equal the nights of active holds, inv_booked the nights
-- of confirmed reservations, inv_blocked the nights of active blocks (channel imports and
-- the inn's own), as the view ari_night_facts (migration 0016) defines them. An empty
-- result means the calendar is consistent.
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/reconcile_ari_vs_holds.sql
--  or: python -m app ops reconcile   (exit 1 when it finds anything)
SELECT a.property_id, a.room_type_id, a.date, a.inv_total,
       a.inv_held, coalesce(f.held, 0) AS expected_held,
       a.inv_booked, coalesce(f.booked, 0) AS expected_booked,
       a.inv_blocked, coalesce(f.blocked, 0) AS expected_blocked
FROM ari_days a
LEFT JOIN ari_night_facts f ON f.room_type_id = a.room_type_id AND f.date = a.date
WHERE a.inv_held <> coalesce(f.held, 0)
   OR a.inv_booked <> coalesce(f.booked, 0)
   OR a.inv_blocked <> coalesce(f.blocked, 0)
   OR a.inv_held < 0
   OR a.inv_booked < 0
   OR a.inv_blocked < 0
   OR a.inv_held + a.inv_booked + a.inv_blocked > a.inv_total
ORDER BY a.room_type_id, a.date;
