-- Outbox rows due for relaying more than 5 minutes ago and still not relayed: the relay
-- (/tasks/outbox/relay, every minute, and right after each handler) is not running or
-- cannot keep up, so the replies, notices and expiry tasks they carry wait. A row backing
-- off after a failed attempt is not due yet (its next_attempt_at is ahead); one set aside
-- after its last attempt is in outbox_dead.sql. Check the relay's task responses and the
-- scheduler job of /tasks/outbox/relay.
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/outbox_overdue.sql
--  or: python -m app ops status   (its outbox-overdue line)
SELECT id, event_type, aggregate_type, aggregate_id, attempts, last_error, correlation_id,
       created_at, next_attempt_at, now() - next_attempt_at AS overdue_by
FROM outbox_events
WHERE enqueued_at IS NULL AND dead_at IS NULL
  AND next_attempt_at < now() - interval '5 minutes'
ORDER BY next_attempt_at;
