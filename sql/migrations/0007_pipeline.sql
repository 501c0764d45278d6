-- Hardening the pipeline (issue 10): outbox rows relayed one by one with backoff and a dead
-- letter; receipts, reservations and messages carrying the correlation id of their story;
-- the critical functions returning the ids of the outbox rows they wrote, so the relay
-- right after a commit enqueues those first.
-- depends: 0006_window
--
-- Expand only: new columns are nullable or defaulted, and the functions keep their
-- arguments (expire_due_holds gains one) and their leading result columns, so a revision
-- still serving the previous code keeps working while this one rolls out.

ALTER TABLE outbox_events
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Set after the last allowed attempt failed: the row is no longer relayed (ops
    -- outbox-dead lists it, ops outbox-retry gives it one more try).
    ADD COLUMN dead_at timestamptz;
DROP INDEX outbox_events_unenqueued_idx;
-- The relay's scan: rows still to hand over, soonest attempt first.
CREATE INDEX outbox_events_due_idx ON outbox_events (next_attempt_at)
    WHERE enqueued_at IS NULL AND dead_at IS NULL;
CREATE INDEX outbox_events_dead_idx ON outbox_events (dead_at) WHERE dead_at IS NOT NULL;

-- The correlation id the receipt's task (and every re-drive of it) carries.
ALTER TABLE processed_events ADD COLUMN correlation_id text;
ALTER TABLE reservations ADD COLUMN correlation_id text;
ALTER TABLE messages ADD COLUMN correlation_id text;

-- Result types change (an outbox_id column), so the functions are dropped and created
-- again; the bodies are 0002's but for the lines that carry correlation and outbox ids.
DROP FUNCTION create_hold(bigint, bigint[], integer[], date, date, integer, integer, text, text,
                          uuid, text);
DROP FUNCTION release_hold(uuid, text, text, text);
DROP FUNCTION expire_due_holds(integer);
DROP FUNCTION convert_hold(uuid, text, text, bigint, text, text, text);

CREATE FUNCTION create_hold(
    p_property_id     bigint,
    p_room_type_ids   bigint[],
    p_quantities      integer[],
    p_checkin         date,
    p_checkout        date,
    p_guests          integer,
    p_ttl_seconds     integer,
    p_idempotency_key text,
    p_fingerprint     text,
    p_conversation_id uuid,
    p_correlation_id  text
) RETURNS TABLE (outcome text, hold_id uuid, expires_at timestamptz, total_cents bigint, currency text,
               outbox_id bigint)
LANGUAGE plpgsql
SET lock_timeout = '2s'
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_nights   integer := (p_checkout - p_checkin) * cardinality(p_room_type_ids);
    v_hold     holds%ROWTYPE;
    v_currency text;
    v_today    date;
    v_rooms    bigint;
    v_capacity bigint;
    v_found    bigint;
    v_sellable bigint;
    v_total    bigint;
    v_refusal  text;
    v_claimed  integer;
    v_outbox   bigint;
BEGIN
    -- Everything to validate and price the request, from plain reads, before any lock.
    SELECT p.currency, (now() AT TIME ZONE p.timezone)::date,
           rooms.n, rooms.capacity, nights.found, nights.sellable, nights.total
    INTO v_currency, v_today, v_rooms, v_capacity, v_found, v_sellable, v_total
    FROM properties p
    CROSS JOIN LATERAL (
        SELECT count(*) AS n,
               sum(rt.max_occupancy * p_quantities[array_position(p_room_type_ids, rt.id)])
                   AS capacity
        FROM room_types rt
        WHERE rt.id = ANY (p_room_type_ids) AND rt.property_id = p.id
    ) AS rooms
    CROSS JOIN LATERAL (
        SELECT count(*) AS found,
               count(*) FILTER (WHERE NOT a.stop_sell AND a.inv_held + a.inv_booked
                                  + p_quantities[array_position(p_room_type_ids, a.room_type_id)]
                                  <= a.inv_total) AS sellable,
               sum(a.rate_cents * p_quantities[array_position(p_room_type_ids, a.room_type_id)])
                   AS total
        FROM ari_days a
        WHERE a.room_type_id = ANY (p_room_type_ids)
          AND a.date >= p_checkin AND a.date < p_checkout
    ) AS nights
    WHERE p.id = p_property_id;

    v_refusal := CASE
        WHEN v_currency IS NULL OR v_rooms <> cardinality(p_room_type_ids) THEN 'invalid_property'
        WHEN v_capacity < p_guests THEN 'too_many_guests'
        WHEN p_checkin < v_today THEN 'past_dates'
        WHEN v_found <> v_nights THEN 'unavailable'
    END;

    -- Claim the key before any answer that depends on availability: a concurrent
    -- request with the same key waits here for the first one, then replays its hold
    -- (answering "unavailable" while our own hold is committing would be a lie).
    IF v_refusal IS NULL THEN
        INSERT INTO holds AS h (property_id, checkin, checkout, guests, total_cents, currency,
                                expires_at, create_idempotency_key, request_fingerprint,
                                conversation_id, correlation_id)
        VALUES (p_property_id, p_checkin, p_checkout, p_guests, v_total, v_currency,
                now() + make_interval(secs => p_ttl_seconds), p_idempotency_key, p_fingerprint,
                p_conversation_id, p_correlation_id)
        ON CONFLICT ON CONSTRAINT holds_property_id_create_idempotency_key_key DO NOTHING
        RETURNING h.* INTO v_hold;
    END IF;
    IF v_hold.id IS NULL THEN
        -- Refused, or the key exists: a replay (even of a request now refused) gets its hold.
        SELECT * INTO v_hold FROM holds h
        WHERE h.property_id = p_property_id AND h.create_idempotency_key = p_idempotency_key;
        IF FOUND THEN
            RETURN QUERY SELECT CASE WHEN v_hold.request_fingerprint = p_fingerprint
                                     THEN 'replayed' ELSE 'conflict' END,
                                v_hold.id, v_hold.expires_at, v_hold.total_cents, v_hold.currency,
                                NULL::bigint;
        ELSE
            RETURN QUERY SELECT v_refusal, NULL::uuid, NULL::timestamptz, NULL::bigint, NULL::text,
                                NULL::bigint;
        END IF;
        RETURN;
    END IF;
    IF v_sellable <> v_nights THEN
        RAISE EXCEPTION 'hold_unavailable' USING ERRCODE = 'HL001';
    END IF;

    INSERT INTO hold_nights (hold_id, room_type_id, date, qty)
    SELECT v_hold.id, w.room_type_id, d::date, w.qty
    FROM unnest(p_room_type_ids, p_quantities) AS w(room_type_id, qty),
         generate_series(p_checkin, p_checkout - 1, interval '1 day') AS d;

    INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
    VALUES ('hold.created', 'hold', v_hold.id::text,
            jsonb_build_object('hold_id', v_hold.id, 'property_id', p_property_id,
                               'conversation_id', p_conversation_id,
                               'expires_at', v_hold.expires_at),
            p_correlation_id)
    RETURNING id INTO v_outbox;

    -- The contended locks, last.
    IF v_nights = 1 THEN
        -- One row has no lock order to keep: the plain conditional UPDATE is the claim.
        UPDATE ari_days a SET inv_held = a.inv_held + p_quantities[1]
        WHERE a.room_type_id = p_room_type_ids[1] AND a.date = p_checkin
          AND NOT a.stop_sell AND a.inv_held + a.inv_booked + p_quantities[1] <= a.inv_total;
    ELSE
        -- Several rows: lock them in (room type, date) order, then update.
        WITH locked AS (
            SELECT a.id FROM ari_days a
            WHERE a.room_type_id = ANY (p_room_type_ids)
              AND a.date >= p_checkin AND a.date < p_checkout
            ORDER BY a.room_type_id, a.date
            FOR NO KEY UPDATE OF a
        )
        UPDATE ari_days a
        SET inv_held = a.inv_held + p_quantities[array_position(p_room_type_ids, a.room_type_id)]
        FROM locked l
        WHERE a.id = l.id AND NOT a.stop_sell
          AND a.inv_held + a.inv_booked
              + p_quantities[array_position(p_room_type_ids, a.room_type_id)] <= a.inv_total;
    END IF;
    GET DIAGNOSTICS v_claimed = ROW_COUNT;
    IF v_claimed <> v_nights THEN
        RAISE EXCEPTION 'hold_unavailable' USING ERRCODE = 'HL001';
    END IF;

    RETURN QUERY SELECT 'created', v_hold.id, v_hold.expires_at, v_hold.total_cents, v_hold.currency,
                        v_outbox;
END
$$;

CREATE FUNCTION release_hold(p_hold_id uuid, p_status text, p_reason text, p_correlation_id text)
RETURNS TABLE (outcome text, outbox_id bigint)
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $$
DECLARE
    v_hold   holds%ROWTYPE;
    v_outbox bigint;
BEGIN
    -- The UPDATE is the lock and the check: a concurrent convert/expire that got here
    -- first has changed the status, and this one then matches nothing.
    UPDATE holds h SET status = p_status, closed_at = now(), cancel_reason = p_reason
    WHERE h.id = p_hold_id AND h.status = 'active'
      AND (p_status = 'cancelled' OR h.expires_at <= now())
    RETURNING h.* INTO v_hold;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'noop', NULL::bigint;
        RETURN;
    END IF;
    INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
    VALUES ('hold.' || p_status, 'hold', p_hold_id::text,
            jsonb_build_object('hold_id', p_hold_id, 'property_id', v_hold.property_id,
                               'conversation_id', v_hold.conversation_id, 'reason', p_reason),
            -- An expiry continues the story the hold began; a cancel is the caller's act.
            CASE WHEN p_status = 'expired' THEN coalesce(v_hold.correlation_id, p_correlation_id)
                 ELSE coalesce(p_correlation_id, v_hold.correlation_id) END)
    RETURNING id INTO v_outbox;
    PERFORM release_hold_nights(ARRAY[p_hold_id]);
    RETURN QUERY SELECT p_status, v_outbox;
END
$$;

CREATE FUNCTION expire_due_holds(p_limit integer, p_correlation_id text DEFAULT NULL)
RETURNS TABLE (hold_id uuid, outbox_id bigint)
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $$
DECLARE
    v_ids uuid[];
BEGIN
    SELECT coalesce(array_agg(due.id), '{}') INTO v_ids FROM (
        SELECT h.id FROM holds h
        WHERE h.status = 'active' AND h.expires_at <= now()
        ORDER BY h.expires_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) AS due;
    UPDATE holds h SET status = 'expired', closed_at = now(), cancel_reason = 'sweep'
    WHERE h.id = ANY (v_ids);
    IF cardinality(v_ids) > 0 THEN
        PERFORM release_hold_nights(v_ids);
    END IF;
    -- Each expiry carries the correlation id of the story its hold began (the sweep's own
    -- only for holds that have none).
    RETURN QUERY
    INSERT INTO outbox_events AS o (event_type, aggregate_type, aggregate_id, payload,
                                    correlation_id)
    SELECT 'hold.expired', 'hold', h.id::text,
           jsonb_build_object('hold_id', h.id, 'property_id', h.property_id,
                              'conversation_id', h.conversation_id, 'reason', 'sweep'),
           coalesce(h.correlation_id, p_correlation_id)
    FROM holds h WHERE h.id = ANY (v_ids)
    RETURNING o.aggregate_id::uuid, o.id;
END
$$;

CREATE FUNCTION convert_hold(
    p_hold_id        uuid,
    p_provider       text,
    p_object_id      text,
    p_amount_cents   bigint,
    p_currency       text,
    p_payment_intent text,
    p_correlation_id text
) RETURNS TABLE (outcome text, payment_id uuid, reservation_id uuid, reservation_code text,
               outbox_id bigint)
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $$
DECLARE
    v_hold     holds%ROWTYPE;
    v_payment  payments%ROWTYPE;
    v_code     text;
    v_res_id   uuid;
    v_nights   integer;
    v_free     integer;
    v_event    text;
    v_outbox   bigint;
    -- The payment continues the story its hold began when the caller has none of its own.
    v_cid      text;
BEGIN
    SELECT * INTO v_hold FROM holds h WHERE h.id = p_hold_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown_hold', NULL::uuid, NULL::uuid, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    v_cid := coalesce(p_correlation_id, v_hold.correlation_id);

    -- Normally created with the Checkout Session; created here if that record is missing.
    INSERT INTO payments (provider, provider_object_id, hold_id, amount_cents, currency)
    VALUES (p_provider, p_object_id, p_hold_id, p_amount_cents, lower(p_currency))
    ON CONFLICT ON CONSTRAINT payments_provider_provider_object_id_key DO NOTHING;
    SELECT * INTO v_payment FROM payments p
    WHERE p.provider = p_provider AND p.provider_object_id = p_object_id FOR UPDATE;

    IF v_payment.status NOT IN ('created', 'pending') OR v_payment.hold_id <> p_hold_id THEN
        RETURN QUERY SELECT 'already_processed', v_payment.id, r.id, r.code, NULL::bigint
                     FROM (SELECT 1) AS one
                     LEFT JOIN reservations r ON r.payment_id = v_payment.id;
        RETURN;
    END IF;

    UPDATE payments p SET amount_cents = p_amount_cents, currency = lower(p_currency),
                          payment_intent = coalesce(p_payment_intent, p.payment_intent),
                          updated_at = now()
    WHERE p.id = v_payment.id;

    IF p_amount_cents <> v_hold.total_cents OR lower(p_currency) <> lower(v_hold.currency) THEN
        v_event := 'mismatch';
    ELSIF v_hold.status = 'converted' THEN
        v_event := 'duplicate';
    ELSIF v_hold.status <> 'active' THEN
        -- Paid after expiry or cancel: book only if every night is still free. Lock the
        -- nights in order and count, then decide; never book part of a stay.
        SELECT count(*), count(*) FILTER (WHERE free) INTO v_nights, v_free FROM (
            SELECT NOT a.stop_sell AND a.inv_held + a.inv_booked + n.qty <= a.inv_total AS free
            FROM ari_days a
            JOIN hold_nights n ON n.room_type_id = a.room_type_id AND n.date = a.date
            WHERE n.hold_id = p_hold_id
            ORDER BY a.room_type_id, a.date
            FOR NO KEY UPDATE OF a
        ) AS nights;
        IF v_free < v_nights THEN
            v_event := 'late';
        END IF;
    END IF;

    IF v_event IS NOT NULL THEN
        UPDATE payments p SET status = 'needs_refund', updated_at = now() WHERE p.id = v_payment.id;
        INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
        VALUES ('payment.' || v_event, 'payment', v_payment.id::text,
                jsonb_build_object('payment_id', v_payment.id, 'hold_id', p_hold_id,
                                   'property_id', v_hold.property_id,
                                   'hold_status', v_hold.status,
                                   'amount_cents', p_amount_cents, 'currency', lower(p_currency),
                                   'expected_cents', v_hold.total_cents,
                                   'expected_currency', lower(v_hold.currency)),
                v_cid)
        RETURNING id INTO v_outbox;
        RETURN QUERY SELECT v_event, v_payment.id, NULL::uuid, NULL::text, v_outbox;
        RETURN;
    END IF;

    LOOP
        v_code := reservation_code();
        EXIT WHEN NOT EXISTS (SELECT 1 FROM reservations r WHERE r.code = v_code);
    END LOOP;
    INSERT INTO reservations (hold_id, payment_id, property_id, code, checkin, checkout,
                              guests, total_cents, currency, correlation_id)
    VALUES (p_hold_id, v_payment.id, v_hold.property_id, v_code, v_hold.checkin,
            v_hold.checkout, v_hold.guests, v_hold.total_cents, v_hold.currency, v_cid)
    RETURNING id INTO v_res_id;
    UPDATE payments p SET status = 'succeeded', updated_at = now() WHERE p.id = v_payment.id;
    UPDATE holds h SET status = 'converted', closed_at = coalesce(h.closed_at, now())
    WHERE h.id = p_hold_id;
    INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
    VALUES ('reservation.confirmed', 'reservation', v_res_id::text,
            jsonb_build_object('reservation_id', v_res_id, 'code', v_code, 'hold_id', p_hold_id,
                               'property_id', v_hold.property_id,
                               'conversation_id', v_hold.conversation_id,
                               'late', v_hold.status <> 'active'),
            v_cid)
    RETURNING id INTO v_outbox;

    -- Nights move from held to booked (or, for a re-claimed hold, straight to booked).
    WITH locked AS (
        SELECT a.id, n.qty
        FROM ari_days a
        JOIN hold_nights n ON n.room_type_id = a.room_type_id AND n.date = a.date
        WHERE n.hold_id = p_hold_id
        ORDER BY a.room_type_id, a.date
        FOR NO KEY UPDATE OF a
    )
    UPDATE ari_days a
    SET inv_held = a.inv_held - CASE WHEN v_hold.status = 'active' THEN l.qty ELSE 0 END,
        inv_booked = a.inv_booked + l.qty
    FROM locked l WHERE a.id = l.id;

    RETURN QUERY SELECT 'converted', v_payment.id, v_res_id, v_code, v_outbox;
END
$$;
