-- ari_night_facts: the one definition of what each night's counters must be, read by the
-- reconcile check (docs/operations/sql/reconcile_ari_vs_holds.sql) and by the repair that
-- writes those counters back (sql/queries/ops_repair.sql): held = nights of active holds,
-- booked = nights of confirmed reservations, blocked = nights of active blocks (channel
-- imports and the inn's own). A night with no fact has no row.
-- depends: 0015_retention
--
-- Expand only: a new view; nothing the previous revision reads changes.

CREATE VIEW ari_night_facts AS
SELECT room_type_id, date,
       coalesce(sum(qty) FILTER (WHERE fact = 'held'), 0)::integer AS held,
       coalesce(sum(qty) FILTER (WHERE fact = 'booked'), 0)::integer AS booked,
       coalesce(sum(qty) FILTER (WHERE fact = 'blocked'), 0)::integer AS blocked
FROM (
    SELECT n.room_type_id, n.date, n.qty, 'held' AS fact
    FROM hold_nights n
    JOIN holds h ON h.id = n.hold_id
    WHERE h.status = 'active'
    UNION ALL
    SELECT n.room_type_id, n.date, n.qty, 'booked'
    FROM hold_nights n
    JOIN reservations r ON r.hold_id = n.hold_id
    WHERE r.status = 'confirmed'
    UNION ALL
    SELECT n.room_type_id, n.date, n.qty, 'blocked'
    FROM block_nights n
    JOIN blocks b ON b.id = n.block_id
    WHERE b.status = 'active'
) AS facts
GROUP BY room_type_id, date;
