-- insert_receipt --
-- Durable receipt of an external event; a duplicate delivery inserts nothing.
-- Ignored types are recorded as already processed, with outcome 'ignored'.
INSERT INTO processed_events AS p (source, external_id, event_type, details, task_name,
                                   processed_at, outcome, correlation_id)
VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END, CASE WHEN $6 THEN 'ignored' END, $7)
ON CONFLICT ON CONSTRAINT processed_events_source_external_id_key DO NOTHING
RETURNING p.source, p.external_id, p.enqueued_at, p.processed_at, p.outcome, p.task_name,
          p.reprocess_generation, p.correlation_id, false AS stale

-- receipt_state --
-- Where an already received event stands; stale: enqueued over $3 seconds ago.
SELECT source, external_id, enqueued_at, processed_at, outcome, task_name,
       reprocess_generation, correlation_id,
       enqueued_at < now() - make_interval(secs => $3) AS stale
FROM processed_events WHERE source = $1 AND external_id = $2

-- stale_receipts --
-- Unfinished receipts enqueued (or, never enqueued, received) over $1 seconds ago, oldest
-- first, at most $2: the re-drive's candidates.
SELECT source, external_id, enqueued_at, task_name, reprocess_generation, correlation_id
FROM processed_events
WHERE processed_at IS NULL AND coalesce(enqueued_at, received_at) < now() - make_interval(secs => $1)
ORDER BY received_at
LIMIT $2

-- redrive_receipt --
-- Name the receipt's task of generation $3 ($4), unless it finished or someone else did.
UPDATE processed_events SET reprocess_generation = $3, task_name = $4, enqueued_at = now()
WHERE source = $1 AND external_id = $2 AND reprocess_generation = $3 - 1
  AND processed_at IS NULL
RETURNING true

-- mark_receipts_enqueued --
-- These events' tasks exist: from now on a duplicate delivery may be acknowledged at once.
-- $1 and $2 are parallel arrays of (source, external_id).
UPDATE processed_events p SET enqueued_at = coalesce(p.enqueued_at, now())
FROM unnest($1::text[], $2::text[]) AS marked (source, external_id)
WHERE p.source = marked.source AND p.external_id = marked.external_id

-- receipt_for_task --
-- What the worker needs to process an event: its type, PII-free details and state.
SELECT event_type, details, received_at, processed_at, outcome
FROM processed_events WHERE source = $1 AND external_id = $2

-- finish_receipt --
-- Record the outcome of processing; the first outcome stands.
UPDATE processed_events SET processed_at = now(), outcome = $3
WHERE source = $1 AND external_id = $2 AND processed_at IS NULL
