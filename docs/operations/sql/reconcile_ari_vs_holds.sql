-- Nights whose counters disagree with the holds, reservations and blocks that own them, or
-- are out of bounds. inv_held must equal the nights of active holds, inv_booked the nights
-- of confirmed reservations, inv_blocked the nights of active blocks (channel imports and
-- the inn's own). An empty result means the calendar is consistent.
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/reconcile_ari_vs_holds.sql
--  or: python -m app ops reconcile   (exit 1 when it finds anything)
WITH held AS (
    SELECT n.room_type_id, n.date, sum(n.qty) AS qty
    FROM hold_nights n
    JOIN holds h ON h.id = n.hold_id
    WHERE h.status = 'active'
    GROUP BY n.room_type_id, n.date
), booked AS (
    SELECT n.room_type_id, n.date, sum(n.qty) AS qty
    FROM hold_nights n
    JOIN reservations r ON r.hold_id = n.hold_id
    WHERE r.status = 'confirmed'
    GROUP BY n.room_type_id, n.date
), blocked AS (
    SELECT n.room_type_id, n.date, sum(n.qty) AS qty
    FROM block_nights n
    JOIN blocks b ON b.id = n.block_id
    WHERE b.status = 'active'
    GROUP BY n.room_type_id, n.date
)
SELECT a.property_id, a.room_type_id, a.date, a.inv_total,
       a.inv_held, coalesce(held.qty, 0) AS expected_held,
       a.inv_booked, coalesce(booked.qty, 0) AS expected_booked,
       a.inv_blocked, coalesce(blocked.qty, 0) AS expected_blocked
FROM ari_days a
LEFT JOIN held ON held.room_type_id = a.room_type_id AND held.date = a.date
LEFT JOIN booked ON booked.room_type_id = a.room_type_id AND booked.date = a.date
LEFT JOIN blocked ON blocked.room_type_id = a.room_type_id AND blocked.date = a.date
WHERE a.inv_held <> coalesce(held.qty, 0)
   OR a.inv_booked <> coalesce(booked.qty, 0)
   OR a.inv_blocked <> coalesce(blocked.qty, 0)
   OR a.inv_held < 0
   OR a.inv_booked < 0
   OR a.inv_blocked < 0
   OR a.inv_held + a.inv_booked + a.inv_blocked > a.inv_total
ORDER BY a.room_type_id, a.date;
