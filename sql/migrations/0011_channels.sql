-- Channel sync (issue 12): units taken without a guest of ours (blocks, imported from a
-- channel's iCal feed or set by the inn), the channel calendars, and the one transaction
-- that applies a parsed feed.
-- depends: 0010_contact_aliases
--
-- Expand only: new columns are defaulted; create_hold and convert_hold keep their
-- signatures (CREATE OR REPLACE) and only start counting blocked units as taken.

ALTER TABLE ari_days ADD COLUMN inv_blocked integer NOT NULL DEFAULT 0;
ALTER TABLE ari_days DROP CONSTRAINT ari_days_inventory_check;
-- The last guard against overbooking, now across channels.
ALTER TABLE ari_days ADD CONSTRAINT ari_days_inventory_check CHECK (
    inv_held >= 0 AND inv_booked >= 0 AND inv_blocked >= 0
    AND inv_held + inv_booked + inv_blocked <= inv_total) NOT VALID;
ALTER TABLE ari_days VALIDATE CONSTRAINT ari_days_inventory_check;

-- A channel calendar of one room type: exported as a feed (its token's SHA-256 names it)
-- and, when it has an import URL, imported from the channel.
CREATE TABLE calendars (
    id                   bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT calendars_pkey PRIMARY KEY,
    property_id          bigint NOT NULL CONSTRAINT calendars_property_id_fkey REFERENCES properties (id),
    room_type_id         bigint NOT NULL,
    name                 text NOT NULL,
    -- The channel's feed URL carries the channel's secret: sealed (AES-GCM), never logged.
    import_url_sealed    text,
    -- Units one event of the channel takes.
    units                integer NOT NULL DEFAULT 1 CONSTRAINT calendars_units_check CHECK (units > 0),
    -- Bumped to give the channel a new export URL (the old one then answers 404).
    rotation             integer NOT NULL DEFAULT 0,
    export_digest        text NOT NULL CONSTRAINT calendars_export_digest_key UNIQUE,
    -- The nights our feed last showed this channel unavailable, when it last fetched it:
    -- an event of theirs that is not a reservation, over nights they saw closed, is an
    -- echo of our own feed, not a booking.
    exported_unavailable date[] NOT NULL DEFAULT '{}',
    exported_at          timestamptz,
    -- Feed health.
    etag                 text,
    last_modified        text,
    last_attempt_at      timestamptz,
    last_success_at      timestamptz,
    last_error           text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    event_count          integer,
    ignored_events       integer,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT calendars_property_id_name_key UNIQUE (property_id, name),
    CONSTRAINT calendars_room_type_fkey FOREIGN KEY (room_type_id, property_id)
        REFERENCES room_types (id, property_id)
);

-- Units of one room type taken for a range of nights without a guest of ours. An imported
-- event that could not take some nights (sold here, or on another channel) keeps them as
-- its conflict: never overbooked, never dropped, told to the staff once.
CREATE TABLE blocks (
    id                   bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT blocks_pkey PRIMARY KEY,
    property_id          bigint NOT NULL CONSTRAINT blocks_property_id_fkey REFERENCES properties (id),
    room_type_id         bigint NOT NULL,
    source               text NOT NULL CONSTRAINT blocks_source_check CHECK (source IN ('ical', 'manual')),
    calendar_id          bigint CONSTRAINT blocks_calendar_id_fkey REFERENCES calendars (id),
    external_uid         text,
    checkin              date NOT NULL,
    checkout             date NOT NULL,
    units                integer NOT NULL CONSTRAINT blocks_units_check CHECK (units > 0),
    -- active: owns its nights; released: gave them back; echo: the channel re-exporting
    -- what our own feed closed (takes nothing).
    status               text NOT NULL DEFAULT 'active'
        CONSTRAINT blocks_status_check CHECK (status IN ('active', 'released', 'echo')),
    conflict_nights      date[] NOT NULL DEFAULT '{}',
    conflict_since       timestamptz,
    conflict_resolved_at timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    released_at          timestamptz,
    CONSTRAINT blocks_stay_check CHECK (checkout > checkin),
    CONSTRAINT blocks_ical_check CHECK ((source = 'ical') = (calendar_id IS NOT NULL AND external_uid IS NOT NULL)),
    CONSTRAINT blocks_calendar_id_external_uid_key UNIQUE (calendar_id, external_uid),
    CONSTRAINT blocks_room_type_fkey FOREIGN KEY (room_type_id, property_id)
        REFERENCES room_types (id, property_id)
);
CREATE INDEX blocks_open_conflict_idx ON blocks (property_id)
    WHERE conflict_nights <> '{}' AND status = 'active';

-- The exact nights a block owns, as hold_nights for holds (and, for the same reason, no
-- foreign key to ari_days).
CREATE TABLE block_nights (
    block_id     bigint NOT NULL CONSTRAINT block_nights_block_id_fkey REFERENCES blocks (id),
    room_type_id bigint NOT NULL,
    date         date NOT NULL,
    qty          integer NOT NULL CONSTRAINT block_nights_qty_check CHECK (qty > 0),
    CONSTRAINT block_nights_pkey PRIMARY KEY (block_id, room_type_id, date)
);
CREATE INDEX block_nights_room_type_id_date_idx ON block_nights (room_type_id, date);

CREATE OR REPLACE FUNCTION create_hold(
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
               count(*) FILTER (WHERE NOT a.stop_sell AND a.inv_held + a.inv_booked + a.inv_blocked
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
          AND NOT a.stop_sell AND a.inv_held + a.inv_booked + a.inv_blocked + p_quantities[1] <= a.inv_total;
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
          AND a.inv_held + a.inv_booked + a.inv_blocked
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

CREATE OR REPLACE FUNCTION convert_hold(
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
            SELECT NOT a.stop_sell AND a.inv_held + a.inv_booked + a.inv_blocked + n.qty <= a.inv_total AS free
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

-- Applies one calendar's parsed feed: the events in it (uid, check-in, check-out, echo),
-- already cut to the horizon. One transaction, lock order: the calendar row, then its
-- room type's ari_days rows by date, all of them in one ordered pass before any change.
--   * an event not yet known claims its units on every night that has them free;
--   * a known event whose dates or echo flag changed gives its nights back and claims anew;
--   * a known event absent from the feed is released (the feed is authoritative);
--   * an unchanged block with conflict nights claims those that have come free (the
--     conflict is resolved once it has them all).
-- Nights a block could not take are its conflict; a conflict that is new writes one
-- 'channel.conflict' outbox row for the staff. A feed that changes nothing writes nothing.
-- Returns what happened, and the ids of the outbox rows written.
CREATE FUNCTION apply_calendar_feed(
    p_calendar_id    bigint,
    p_uids           text[],
    p_checkins       date[],
    p_checkouts      date[],
    p_echoes         boolean[],
    p_correlation_id text
) RETURNS TABLE (created integer, changed integer, released integer, claimed integer,
                 conflicts integer, resolved integer, outbox_ids bigint[])
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $$
DECLARE
    v_cal      calendars%ROWTYPE;
    v_redo     bigint[];  -- known blocks removed from the feed, moved or re-flagged
    v_retry    bigint[];  -- unchanged active blocks with conflict nights
    v_new      integer;
    v_released integer := 0;
    v_changed  integer := 0;
    v_claimed  integer := 0;
    v_denied   jsonb;     -- block id -> the nights it wanted and did not get
    v_conflicts integer := 0;
    v_resolved integer := 0;
    v_outbox   bigint[] := '{}';
BEGIN
    SELECT * INTO v_cal FROM calendars c WHERE c.id = p_calendar_id FOR UPDATE;

    WITH feed AS (
        SELECT * FROM unnest(p_uids, p_checkins, p_checkouts, p_echoes)
            AS f(uid, checkin, checkout, echo)
    ), known AS (
        SELECT b.* FROM blocks b
        WHERE b.calendar_id = p_calendar_id AND b.status IN ('active', 'echo')
    )
    SELECT array_agg(k.id) FILTER (WHERE k.id IS NOT NULL AND (f.uid IS NULL
                                      OR (k.checkin, k.checkout, k.status = 'echo')
                                         IS DISTINCT FROM (f.checkin, f.checkout, f.echo))),
           array_agg(k.id) FILTER (WHERE f.uid IS NOT NULL AND k.status = 'active'
                                      AND (k.checkin, k.checkout) = (f.checkin, f.checkout)
                                      AND NOT f.echo AND k.conflict_nights <> '{}'),
           count(*) FILTER (WHERE k.id IS NULL)
    INTO v_redo, v_retry, v_new
    FROM known k FULL JOIN feed f ON f.uid = k.external_uid;
    v_redo := coalesce(v_redo, '{}');
    v_retry := coalesce(v_retry, '{}');

    -- A conflict whose nights are all still taken is no change either: look before locking.
    IF cardinality(v_retry) > 0 AND NOT EXISTS (
        SELECT 1 FROM blocks b JOIN ari_days a
          ON a.room_type_id = b.room_type_id AND a.date = ANY (b.conflict_nights)
        WHERE b.id = ANY (v_retry)
          AND a.inv_total - a.inv_held - a.inv_booked - a.inv_blocked >= b.units
    ) THEN
        v_retry := '{}';
    END IF;
    IF cardinality(v_redo) = 0 AND cardinality(v_retry) = 0 AND v_new = 0 THEN
        RETURN QUERY SELECT 0, 0, 0, 0, 0, 0, v_outbox;  -- the usual sync: nothing to write
        RETURN;
    END IF;

    -- Every night this apply may touch, locked once, in date order: the nights the blocks
    -- to redo own now, and the nights the feed's new or changed events and the conflicts
    -- to retry want.
    PERFORM 1 FROM ari_days a
    WHERE a.room_type_id = v_cal.room_type_id
      AND a.date IN (
          SELECT n.date FROM block_nights n WHERE n.block_id = ANY (v_redo)
          UNION
          SELECT d::date
          FROM unnest(p_uids, p_checkins, p_checkouts) AS f(uid, checkin, checkout),
               generate_series(f.checkin, f.checkout - 1, interval '1 day') AS d
          WHERE NOT EXISTS (SELECT 1 FROM blocks b
                            WHERE b.calendar_id = p_calendar_id AND b.external_uid = f.uid
                              AND b.status IN ('active', 'echo') AND NOT b.id = ANY (v_redo))
          UNION
          SELECT unnest(b.conflict_nights) FROM blocks b WHERE b.id = ANY (v_retry))
    ORDER BY a.date
    FOR NO KEY UPDATE OF a;

    -- The blocks to redo give their nights back.
    WITH gone AS (
        DELETE FROM block_nights n WHERE n.block_id = ANY (v_redo)
        RETURNING n.date, n.qty
    )
    UPDATE ari_days a SET inv_blocked = a.inv_blocked - g.qty
    FROM (SELECT date, sum(qty) AS qty FROM gone GROUP BY date) g
    WHERE a.room_type_id = v_cal.room_type_id AND a.date = g.date;

    -- Removed from the feed: released.
    WITH released AS (
        UPDATE blocks b SET status = 'released', released_at = now(), updated_at = now(),
                            conflict_resolved_at = CASE WHEN b.conflict_nights <> '{}'
                                                        THEN now()
                                                        ELSE b.conflict_resolved_at END,
                            conflict_nights = '{}'
        WHERE b.id = ANY (v_redo) AND NOT (b.external_uid = ANY (p_uids))
        RETURNING b.id
    )
    SELECT count(*) INTO v_released FROM released;

    -- Moved or re-flagged: the feed's dates and flag; their conflict starts over.
    WITH feed AS (
        SELECT * FROM unnest(p_uids, p_checkins, p_checkouts, p_echoes)
            AS f(uid, checkin, checkout, echo)
    ), moved AS (
        UPDATE blocks b SET checkin = f.checkin, checkout = f.checkout,
                            status = CASE WHEN f.echo THEN 'echo' ELSE 'active' END,
                            -- An echo takes nothing, so it lacks nothing either.
                            conflict_nights = CASE WHEN f.echo THEN '{}'
                                                   ELSE b.conflict_nights END,
                            conflict_resolved_at = CASE WHEN f.echo AND b.conflict_nights <> '{}'
                                                        THEN now()
                                                        ELSE b.conflict_resolved_at END,
                            updated_at = now()
        FROM feed f
        WHERE b.id = ANY (v_redo) AND b.external_uid = f.uid
        RETURNING b.id
    )
    SELECT count(*) INTO v_changed FROM moved;

    -- New events (a uid released earlier and back in the feed is the same block again).
    WITH feed AS (
        SELECT * FROM unnest(p_uids, p_checkins, p_checkouts, p_echoes)
            AS f(uid, checkin, checkout, echo)
    ), inserted AS (
        INSERT INTO blocks AS b (property_id, room_type_id, source, calendar_id, external_uid,
                                 checkin, checkout, units, status)
        SELECT v_cal.property_id, v_cal.room_type_id, 'ical', p_calendar_id, f.uid,
               f.checkin, f.checkout, v_cal.units,
               CASE WHEN f.echo THEN 'echo' ELSE 'active' END
        FROM feed f
        WHERE NOT EXISTS (SELECT 1 FROM blocks k
                          WHERE k.calendar_id = p_calendar_id AND k.external_uid = f.uid
                            AND k.status IN ('active', 'echo'))
        ON CONFLICT ON CONSTRAINT blocks_calendar_id_external_uid_key DO UPDATE
        SET checkin = excluded.checkin, checkout = excluded.checkout, status = excluded.status,
            released_at = NULL, updated_at = now()
        RETURNING b.id
    )
    SELECT v_redo || coalesce(array_agg(id), '{}') INTO v_redo FROM inserted;

    -- The claim, first come (oldest block) first served on each night: every night of the
    -- new and changed active blocks, and the conflict nights of those to retry.
    WITH want AS (
        SELECT b.id AS block_id, d::date AS date, b.units AS qty
        FROM blocks b, generate_series(b.checkin, b.checkout - 1, interval '1 day') AS d
        WHERE b.id = ANY (v_redo) AND b.status = 'active'
        UNION ALL
        SELECT b.id, unnest(b.conflict_nights), b.units FROM blocks b WHERE b.id = ANY (v_retry)
    ), nights AS (
        SELECT a.date, a.inv_total - a.inv_held - a.inv_booked - a.inv_blocked AS free
        FROM ari_days a
        WHERE a.room_type_id = v_cal.room_type_id AND a.date IN (SELECT w.date FROM want w)
    ), ranked AS (
        -- Nights beyond the calendar (no ari_days row) are nobody's to sell: not wanted.
        SELECT w.block_id, w.date, w.qty,
               sum(w.qty) OVER (PARTITION BY w.date ORDER BY w.block_id) <= n.free AS granted
        FROM want w JOIN nights n ON n.date = w.date
    ), granted AS (
        INSERT INTO block_nights (block_id, room_type_id, date, qty)
        SELECT r.block_id, v_cal.room_type_id, r.date, r.qty FROM ranked r WHERE r.granted
        RETURNING date, qty
    ), counted AS (
        UPDATE ari_days a SET inv_blocked = a.inv_blocked + g.qty
        FROM (SELECT date, sum(qty) AS qty FROM granted GROUP BY date) g
        WHERE a.room_type_id = v_cal.room_type_id AND a.date = g.date
    )
    SELECT (SELECT count(*) FROM ranked WHERE granted),
           coalesce(jsonb_object_agg(d.block_id, d.nights), '{}')
    INTO v_claimed, v_denied
    FROM (SELECT w.block_id,
                 coalesce(jsonb_agg(r.date ORDER BY r.date) FILTER (WHERE NOT r.granted), '[]')
                     AS nights
          FROM (SELECT DISTINCT block_id FROM want) w
          LEFT JOIN ranked r ON r.block_id = w.block_id
          GROUP BY w.block_id) d;

    -- Each claimed block's conflict: the nights it wanted and did not get (for a retried
    -- block, its old conflict nights it still lacks).
    WITH outcome AS (
        SELECT b.id, b.conflict_nights AS before,
               ARRAY(SELECT jsonb_array_elements_text(v_denied -> b.id::text)::date) AS after
        FROM blocks b
        WHERE v_denied ? b.id::text
    ), updated AS (
        UPDATE blocks b
        SET conflict_nights = o.after,
            conflict_since = CASE WHEN o.before = '{}' THEN now() ELSE b.conflict_since END,
            conflict_resolved_at = CASE WHEN o.after = '{}' THEN now() END,
            updated_at = now()
        FROM outcome o
        WHERE b.id = o.id AND o.after IS DISTINCT FROM o.before
        RETURNING b.id, b.room_type_id, o.before, o.after
    ), noticed AS (
        INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload,
                                   correlation_id)
        SELECT 'channel.conflict', 'block', u.id::text,
               jsonb_build_object('block_id', u.id, 'property_id', v_cal.property_id,
                                  'calendar_id', p_calendar_id, 'room_type_id', u.room_type_id,
                                  'nights', u.after),
               p_correlation_id
        FROM updated u
        -- A new conflict only: a retried sync, or a block still short of nights, is told once.
        WHERE u.before = '{}' AND u.after <> '{}'
        RETURNING id
    )
    SELECT (SELECT count(*) FROM updated u WHERE u.before = '{}' AND u.after <> '{}'),
           (SELECT count(*) FROM updated u WHERE u.after = '{}' AND u.before <> '{}'),
           coalesce((SELECT array_agg(id) FROM noticed), '{}')
    INTO v_conflicts, v_resolved, v_outbox;

    RETURN QUERY SELECT v_new, v_changed, v_released, v_claimed, v_conflicts, v_resolved,
                        v_outbox;
END
$$;
