-- Received provider events that have not finished 10 minutes (RECEIPT_REDRIVE_SECONDS'
-- default) after their task was enqueued — or after they arrived, if no task was ever
-- enqueued (the webhook answered 5xx and the provider gave up). Their task was lost or is
-- still retrying: the scheduled re-drive (/tasks/receipts/redrive, every 5 minutes)
-- re-enqueues one whose task Cloud Tasks no longer has, at most 5 times.
-- Fix what stays here: python -m app ops reprocess --source stripe --limit 50 (or whatsapp)
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/stale_receipts.sql
--  or: python -m app ops stale-receipts   (exit 1 when it finds anything)
SELECT pe.source, pe.external_id, pe.event_type, pe.received_at, pe.enqueued_at,
       pe.task_name, pe.reprocess_generation, pe.correlation_id
FROM processed_events pe
WHERE pe.processed_at IS NULL
  AND coalesce(pe.enqueued_at, pe.received_at) < now() - interval '10 minutes'
ORDER BY pe.received_at;
