-- How long each kind of row is kept (app/ops/retention.py runs these; the periods are the
-- issue 18 policy). Each category has a count of what is due (the preview) and a batch that
-- removes or erases at most $1 due rows in one statement, so in a short transaction of its
-- own; rows another transaction has locked are skipped (SKIP LOCKED) and wait for the next
-- run, so no batch ever queues behind the live work on these tables.

-- retention_processed_events_due --
-- Provider receipts 90 days after they were processed (or arrived, if they never were:
-- by then the provider stopped retrying long ago and `ops stale-receipts` has shown them).
SELECT count(*) FROM processed_events
WHERE processed_at < now() - interval '90 days'
   OR (processed_at IS NULL AND received_at < now() - interval '90 days')

-- retention_processed_events_batch --
WITH due AS (
    SELECT id FROM processed_events
    WHERE processed_at < now() - interval '90 days'
       OR (processed_at IS NULL AND received_at < now() - interval '90 days')
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM processed_events e USING due WHERE e.id = due.id RETURNING 1
)
SELECT count(*) FROM gone

-- retention_outbox_sent_due --
-- Outbox rows 180 days after their task was handed to Cloud Tasks.
SELECT count(*) FROM outbox_events WHERE enqueued_at < now() - interval '180 days'

-- retention_outbox_sent_batch --
WITH due AS (
    SELECT id FROM outbox_events
    WHERE enqueued_at < now() - interval '180 days'
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM outbox_events o USING due WHERE o.id = due.id RETURNING 1
)
SELECT count(*) FROM gone

-- retention_outbox_dead_due --
-- Outbox rows set aside as dead 180 days ago and never retried since (a retry clears dead_at).
SELECT count(*) FROM outbox_events WHERE dead_at < now() - interval '180 days'

-- retention_outbox_dead_batch --
WITH due AS (
    SELECT id FROM outbox_events
    WHERE dead_at < now() - interval '180 days'
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM outbox_events o USING due WHERE o.id = due.id RETURNING 1
)
SELECT count(*) FROM gone

-- retention_idempotency_keys_due --
-- Command keys 30 days old: a repeat of a command comes within minutes, not weeks. A small
-- table, written by staff commands only: a scan costs less than an index on every insert.
SELECT count(*) FROM idempotency_keys WHERE created_at < now() - interval '30 days'

-- retention_idempotency_keys_batch --
WITH due AS (
    SELECT id FROM idempotency_keys
    WHERE created_at < now() - interval '30 days'
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM idempotency_keys k USING due WHERE k.id = due.id RETURNING 1
)
SELECT count(*) FROM gone

-- retention_audit_log_due --
-- Audit rows over 2 years old: the only ones its trigger lets go (migration 0015). A small
-- table, one row per staff command.
SELECT count(*) FROM audit_log WHERE created_at < now() - interval '2 years'

-- retention_audit_log_batch --
WITH due AS (
    SELECT id FROM audit_log
    WHERE created_at < now() - interval '2 years'
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM audit_log l USING due WHERE l.id = due.id RETURNING 1
)
SELECT count(*) FROM gone

-- retention_guests_due --
-- Guests (contacts that are not an inn's staff) with nothing for 365 days and no stay to
-- come (guest_last_activity, migration 0015), not yet erased.
SELECT count(*) FROM contacts k
WHERE k.phone_encrypted <> ''::bytea
  AND NOT EXISTS (SELECT 1 FROM staff_numbers s WHERE s.contact_hash = k.contact_hash)
  AND guest_last_activity(k.contact_hash) < now() - interval '365 days'

-- retention_guests_batch --
-- Erase them, keeping every row a hold or reservation chains to (holds → conversations →
-- contacts): the sealed phone emptied; the contact hash (an HMAC of the phone, the link
-- from a number to this history) replaced by 'erased-<contact id>' on the contact and its
-- conversations, so the number writing again starts a new contact; their aliases (LID
-- hashes) dropped; conversations' context emptied; messages' sealed bodies, templates,
-- provider ids and dedupe keys (WhatsApp ids encode the phone) and errors cleared; the
-- sealed name and name index of their reservations cleared. One statement: the contact's
-- new hash and its conversations' are checked by the foreign key together, at its end.
WITH due AS (
    SELECT k.id, k.contact_hash FROM contacts k
    WHERE k.phone_encrypted <> ''::bytea
      AND NOT EXISTS (SELECT 1 FROM staff_numbers s WHERE s.contact_hash = k.contact_hash)
      AND guest_last_activity(k.contact_hash) < now() - interval '365 days'
    LIMIT $1
    FOR UPDATE OF k SKIP LOCKED
), conversations_erased AS (
    UPDATE conversations c
    SET contact_hash = 'erased-' || due.id, context = '{}', lease_until = NULL
    FROM due WHERE c.contact_hash = due.contact_hash
    RETURNING c.id
), messages_erased AS (
    UPDATE messages m
    SET body_encrypted = ''::bytea, template = NULL, provider_message_id = NULL,
        dedupe_key = NULL, last_error = NULL
    FROM conversations_erased c WHERE m.conversation_id = c.id
), names_erased AS (
    UPDATE reservations r SET guest_name_sealed = NULL, guest_name_index = '{}'
    FROM holds h JOIN conversations_erased c ON c.id = h.conversation_id
    WHERE r.hold_id = h.id
), aliases_dropped AS (
    DELETE FROM contact_aliases a USING due WHERE a.contact_hash = due.contact_hash
), contacts_erased AS (
    UPDATE contacts k SET contact_hash = 'erased-' || due.id, phone_encrypted = ''::bytea
    FROM due WHERE k.id = due.id
    RETURNING 1
)
SELECT count(*) FROM contacts_erased

-- retention_walk_in_names_due --
-- Names of reservations made at the desk (no conversation, so no contact to erase them
-- with), 365 days after their check-out.
SELECT count(*) FROM reservations r JOIN holds h ON h.id = r.hold_id
WHERE h.conversation_id IS NULL
  AND (r.guest_name_sealed IS NOT NULL OR r.guest_name_index <> '{}')
  AND r.checkout < (now() - interval '365 days')::date

-- retention_walk_in_names_batch --
WITH due AS (
    SELECT r.id FROM reservations r JOIN holds h ON h.id = r.hold_id
    WHERE h.conversation_id IS NULL
      AND (r.guest_name_sealed IS NOT NULL OR r.guest_name_index <> '{}')
      AND r.checkout < (now() - interval '365 days')::date
    LIMIT $1
    FOR UPDATE OF r SKIP LOCKED
), erased AS (
    UPDATE reservations r SET guest_name_sealed = NULL, guest_name_index = '{}'
    FROM due WHERE r.id = due.id
    RETURNING 1
)
SELECT count(*) FROM erased

-- retention_console_due --
-- The console's codes, sessions, attempt counters and commands, 30 days old: long spent
-- (a code lives 10 minutes, a session 12 hours, a counter's window 15 minutes).
SELECT (SELECT count(*) FROM console_codes WHERE created_at < now() - interval '30 days')
     + (SELECT count(*) FROM console_sessions WHERE created_at < now() - interval '30 days')
     + (SELECT count(*) FROM console_attempts WHERE window_start < now() - interval '30 days')
     + (SELECT count(*) FROM console_commands WHERE created_at < now() - interval '30 days')

-- retention_console_batch --
WITH codes AS (
    DELETE FROM console_codes WHERE contact_hash IN (
        SELECT contact_hash FROM console_codes
        WHERE created_at < now() - interval '30 days' LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING 1
), sessions AS (
    DELETE FROM console_sessions WHERE id_hash IN (
        SELECT id_hash FROM console_sessions
        WHERE created_at < now() - interval '30 days' LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING 1
), attempts AS (
    DELETE FROM console_attempts WHERE (subject, window_start) IN (
        SELECT subject, window_start FROM console_attempts
        WHERE window_start < now() - interval '30 days' LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING 1
), commands AS (
    DELETE FROM console_commands WHERE id IN (
        SELECT id FROM console_commands
        WHERE created_at < now() - interval '30 days' LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT (SELECT count(*) FROM codes) + (SELECT count(*) FROM sessions)
     + (SELECT count(*) FROM attempts) + (SELECT count(*) FROM commands)
