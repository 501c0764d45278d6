-- Retention (issue 18): what lets the daily retention job (app/ops/retention.py) find old
-- rows without reading whole tables, the one definition of a guest's last activity, and
-- the one narrow way old audit rows may go.
--   * processed_events, outbox_events: partial indexes on the moment a row's work ended
--     (processed_at; enqueued_at, when its task was handed to Cloud Tasks). Neither is set
--     on INSERT, so the webhook path and every critical transaction (each writes an outbox
--     row) pay nothing; the UPDATEs that set them were already non-HOT (both columns are in
--     the predicate of an existing partial index), so they gain one index entry, no more;
--   * contact_aliases (contact_hash): a guest's aliases, looked up and dropped with the
--     guest, and checked by the foreign key when an erased contact's hash is rewritten;
--   * guest_last_activity(contact_hash): the newest sign of a guest — their contact, an
--     alias, a conversation turn, a message or its status, a hold (an active one: now), a
--     stay (a future one: its date), a payment's news;
--   * audit_log stays append-only, except that a row over 2 years old may be deleted.
-- depends: 0014_provider_pauses
--
-- Expand only: indexes, a new function, and a trigger that refuses less than before (the
-- previous revision never deletes audit rows). The indexes are built in the migration's
-- transaction, so writes to those tables wait for their builds — a read of each table,
-- well under a second at an inn's volumes. Not CONCURRENTLY: that build waits for every
-- open transaction, among them a second migrator's, which waits inside one for the
-- advisory lock this migrator holds (app/migrate.py), so both would wait for ever. The
-- lock timeout makes the migration fail, and the deploy retry it, rather than queue every
-- webhook and booking behind a long transaction the build would wait for.

SET LOCAL lock_timeout = '5s';

CREATE INDEX processed_events_processed_at_idx
    ON processed_events (processed_at) WHERE processed_at IS NOT NULL;

CREATE INDEX outbox_events_enqueued_at_idx
    ON outbox_events (enqueued_at) WHERE enqueued_at IS NOT NULL;

CREATE INDEX contact_aliases_contact_hash_idx ON contact_aliases (contact_hash);

CREATE FUNCTION guest_last_activity(p_contact_hash text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT greatest(
        (SELECT k.created_at FROM contacts k WHERE k.contact_hash = p_contact_hash),
        (SELECT max(a.updated_at) FROM contact_aliases a WHERE a.contact_hash = p_contact_hash),
        (SELECT max(greatest(c.updated_at, c.last_inbound_at))
         FROM conversations c WHERE c.contact_hash = p_contact_hash),
        (SELECT max(greatest(m.created_at, m.updated_at))
         FROM conversations c JOIN messages m ON m.conversation_id = c.id
         WHERE c.contact_hash = p_contact_hash),
        (SELECT max(greatest(h.created_at, h.closed_at,
                             CASE WHEN h.status = 'active' THEN now() END,
                             r.created_at, r.cancelled_at, r.checkout::timestamptz,
                             p.updated_at))
         FROM conversations c
         JOIN holds h ON h.conversation_id = c.id
         LEFT JOIN reservations r ON r.hold_id = h.id
         LEFT JOIN payments p ON p.hold_id = h.id
         WHERE c.contact_hash = p_contact_hash)
    )
$$;

-- Why a trigger that lets old rows go rather than no trigger, or a switch the job flips:
-- the audit log's worth is that nobody rewrites what happened. UPDATE stays refused, so
-- no row's created_at can be moved back to make it deletable; DELETE is refused for every
-- row younger than the policy, whoever asks, so a bug or a mistaken query in the job (or
-- anyone's psql) cannot thin recent history. The policy lives here once: the job asks for
-- rows over 2 years old and this decides. (A row inserted with a backdated created_at can
-- be deleted, but whoever can insert rows could only remove what they made up.)
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.created_at < now() - interval '2 years' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'HL002';
END
$$;
