-- insert_receipt --
-- Durable receipt of an external event; a duplicate delivery inserts nothing.
-- Ignored types are recorded as already processed, with outcome 'ignored'.
INSERT INTO processed_events (source, external_id, event_type, details, task_name,
                              processed_at, outcome)
VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END, CASE WHEN $6 THEN 'ignored' END)
ON CONFLICT ON CONSTRAINT processed_events_source_external_id_key DO NOTHING
RETURNING enqueued_at, outcome

-- receipt_state --
-- Where an already received event stands.
SELECT enqueued_at, outcome, task_name FROM processed_events WHERE source = $1 AND external_id = $2

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
