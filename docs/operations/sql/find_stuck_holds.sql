-- Active holds more than 5 minutes past their expiry: their expire task was lost and
-- the sweep has not caught them (it runs every few minutes), so their nights are stuck.
-- Fix: python -m app ops expire-stuck --limit N (the worker's own sweep transaction).
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/find_stuck_holds.sql
--  or: python -m app ops stuck-holds   (exit 1 when it finds anything)
SELECT h.id AS hold_id, h.property_id, h.checkin, h.checkout, h.expires_at,
       now() - h.expires_at AS overdue_by
FROM holds h
WHERE h.status = 'active'
  AND h.expires_at < now() - interval '5 minutes'
ORDER BY h.expires_at;
