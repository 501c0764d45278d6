-- Received provider events that never finished processing, oldest first: their task was
-- lost, abandoned after its retries, or never enqueued (the webhook answered 5xx and the
-- provider gave up). Received more than 10 minutes ago, so tasks still in flight or
-- backing off are left alone.
-- Fix: python -m app ops reprocess --source stripe --limit 50 (or --source whatsapp)
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/reprocess_candidates.sql
SELECT pe.source, pe.external_id, pe.event_type, pe.received_at, pe.enqueued_at,
       pe.task_name, pe.reprocess_generation
FROM processed_events pe
WHERE pe.processed_at IS NULL
  AND pe.received_at < now() - interval '10 minutes'
ORDER BY pe.received_at;
