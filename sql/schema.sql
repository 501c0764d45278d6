CREATE FUNCTION public.apply_calendar_feed(p_calendar_id bigint, p_uids text[], p_checkins date[], p_checkouts date[], p_echoes boolean[], p_correlation_id text) RETURNS TABLE(created integer, changed integer, released integer, claimed integer, conflicts integer, resolved integer, outbox_ids bigint[])
    LANGUAGE plpgsql
    SET lock_timeout TO '2s'
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

CREATE FUNCTION public.audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.created_at < now() - interval '2 years' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'HL002';
END
$$;

CREATE FUNCTION public.convert_hold(p_hold_id uuid, p_provider text, p_object_id text, p_amount_cents bigint, p_currency text, p_payment_intent text, p_correlation_id text) RETURNS TABLE(outcome text, payment_id uuid, reservation_id uuid, reservation_code text, outbox_id bigint)
    LANGUAGE plpgsql
    SET lock_timeout TO '2s'
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

    IF p_object_id IS NULL THEN
        -- Paid at the inn (offline): the hold's one payment, made here. The hold's lock
        -- (above) serialises two conversions of one hold.
        SELECT * INTO v_payment FROM payments p
        WHERE p.hold_id = p_hold_id AND p.provider = p_provider FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO payments (provider, provider_object_id, hold_id, amount_cents, currency)
            VALUES (p_provider, NULL, p_hold_id, p_amount_cents, lower(p_currency))
            RETURNING * INTO v_payment;
        END IF;
    ELSE
        -- Normally created with the Checkout Session; created here if that record is missing.
        INSERT INTO payments (provider, provider_object_id, hold_id, amount_cents, currency)
        VALUES (p_provider, p_object_id, p_hold_id, p_amount_cents, lower(p_currency))
        ON CONFLICT ON CONSTRAINT payments_provider_provider_object_id_key DO NOTHING;
        SELECT * INTO v_payment FROM payments p
        WHERE p.provider = p_provider AND p.provider_object_id = p_object_id FOR UPDATE;
    END IF;

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
    INSERT INTO reservation_units (reservation_id, unit, room_type_id, adults, children_ages,
                                   total_cents)
    SELECT v_res_id, u.unit, u.room_type_id, u.adults, u.children_ages, u.total_cents
    FROM hold_units u WHERE u.hold_id = p_hold_id;
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

CREATE FUNCTION public.create_hold(p_property_id bigint, p_units jsonb, p_checkin date, p_checkout date, p_ttl_seconds integer, p_idempotency_key text, p_fingerprint text, p_conversation_id uuid, p_correlation_id text) RETURNS TABLE(outcome text, hold_id uuid, expires_at timestamp with time zone, total_cents bigint, currency text, outbox_id bigint, refused_on date, refused_bound integer)
    LANGUAGE plpgsql
    SET lock_timeout TO '2s'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    v_stay          integer := p_checkout - p_checkin;
    v_room_type_ids bigint[];
    v_quantities    integer[];
    v_guests        integer;
    v_nights        integer;
    v_hold          holds%ROWTYPE;
    v_currency      text;
    v_today         date;
    v_band_ages     integer[];
    v_band_pcts     integer[];
    v_rooms         bigint;
    v_misfits       bigint;
    v_unit_totals   bigint[];
    v_found         bigint;
    v_sellable      bigint;
    v_stopped       date;
    v_rule          text;
    v_rule_bound    integer;
    v_rates         bigint[];  -- [room type in v_room_type_ids order][night], as read
    v_extras        bigint[];
    v_refusal       text;
    v_claimed       integer;
    v_changed       boolean;
    v_outbox        bigint;
BEGIN
    -- Everything to validate and price the request, from one plain read before any lock:
    -- the units of each room type (what each of its nights claims); the property and its
    -- children's bands; each unit's fit and price; and per room type the nights (found,
    -- sellable, stop-sold), the stay rules of the arrival and departure dates, and the
    -- rates and extra-adult prices the units were priced from.
    SELECT w.ids, w.quantities, w.guests, p.currency, (now() AT TIME ZONE p.timezone)::date,
           b.ages, b.pcts, u.n, u.misfits, u.totals,
           n.found, n.sellable, n.stopped, n.rule, n.bound, n.rates, n.extras
    INTO v_room_type_ids, v_quantities, v_guests, v_currency, v_today, v_band_ages, v_band_pcts,
         v_rooms, v_misfits, v_unit_totals, v_found, v_sellable, v_stopped, v_rule,
         v_rule_bound, v_rates, v_extras
    FROM (
        SELECT array_agg(r.room_type_id ORDER BY r.room_type_id) AS ids,
               array_agg(r.n ORDER BY r.room_type_id) AS quantities, sum(r.guests) AS guests
        FROM (SELECT u.room_type_id, count(*)::integer AS n,
                     sum(u.adults + cardinality(u.children_ages))::integer AS guests
              FROM request_units(p_units) u GROUP BY u.room_type_id) AS r
    ) AS w
    LEFT JOIN properties p ON p.id = p_property_id
    CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(c.max_age ORDER BY c.max_age), '{}') AS ages,
               coalesce(array_agg(c.percent ORDER BY c.max_age), '{}') AS pcts
        FROM child_rates c WHERE c.property_id = p_property_id
    ) AS b
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, count(*) FILTER (WHERE NOT x.fits) AS misfits,
               array_agg(x.total_cents ORDER BY x.unit) AS totals
        FROM unit_prices(p_units, p_property_id, p_checkin, p_checkout, b.ages, b.pcts) AS x
    ) AS u
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(r.found), 0) AS found, coalesce(sum(r.sellable), 0) AS sellable,
               min(r.stopped) AS stopped,
               (array_agg(r.rule ORDER BY r.room_type_id) FILTER (WHERE r.rule IS NOT NULL))[1]
                   AS rule,
               (array_agg(CASE r.rule WHEN 'min_stay' THEN r.min_stay
                                      WHEN 'max_stay' THEN r.max_stay END
                          ORDER BY r.room_type_id) FILTER (WHERE r.rule IS NOT NULL))[1]
                   AS bound,
               array_agg(r.rates ORDER BY r.room_type_id) FILTER (WHERE r.found = v_stay)
                   AS rates,
               array_agg(r.extras ORDER BY r.room_type_id) FILTER (WHERE r.found = v_stay)
                   AS extras
        FROM (
            SELECT a.room_type_id,
                   count(*) FILTER (WHERE a.date < p_checkout) AS found,
                   count(*) FILTER (WHERE a.date < p_checkout AND NOT a.stop_sell
                                      AND a.inv_held + a.inv_booked + a.inv_blocked
                                          + w.quantities[array_position(w.ids,
                                                                        a.room_type_id)]
                                          <= a.inv_total) AS sellable,
                   min(a.date) FILTER (WHERE a.date < p_checkout AND a.stop_sell) AS stopped,
                   min(a.min_stay) FILTER (WHERE a.date = p_checkin) AS min_stay,
                   min(a.max_stay) FILTER (WHERE a.date = p_checkin) AS max_stay,
                   stay_rule(v_stay,
                             bool_or(a.closed_to_arrival) FILTER (WHERE a.date = p_checkin),
                             min(a.min_stay) FILTER (WHERE a.date = p_checkin),
                             min(a.max_stay) FILTER (WHERE a.date = p_checkin),
                             bool_or(a.date = p_checkout),
                             bool_or(a.closed_to_departure) FILTER (WHERE a.date = p_checkout))
                       AS rule,
                   array_agg(a.rate_cents ORDER BY a.date) FILTER (WHERE a.date < p_checkout)
                       AS rates,
                   array_agg(a.extra_adult_cents ORDER BY a.date)
                       FILTER (WHERE a.date < p_checkout) AS extras
            FROM ari_days a
            WHERE a.room_type_id = ANY (w.ids)
              AND a.date >= p_checkin AND a.date <= p_checkout
            GROUP BY a.room_type_id
        ) AS r
    ) AS n;
    v_nights := v_stay * cardinality(v_room_type_ids);

    v_refusal := CASE
        WHEN v_currency IS NULL OR v_room_type_ids IS NULL
             OR v_rooms <> jsonb_array_length(p_units) THEN 'invalid_property'
        WHEN v_misfits > 0 THEN 'too_many_guests'
        WHEN p_checkin < v_today THEN 'past_dates'
        WHEN v_found <> v_nights THEN 'unavailable'
        WHEN v_rule IS NOT NULL THEN v_rule
        WHEN v_stopped IS NOT NULL THEN 'stop_sell'
    END;

    -- Claim the key before any answer that depends on availability: a concurrent
    -- request with the same key waits here for the first one, then replays its hold
    -- (answering "unavailable" while our own hold is committing would be a lie).
    IF v_refusal IS NULL THEN
        INSERT INTO holds AS h (property_id, checkin, checkout, guests, total_cents, currency,
                                expires_at, create_idempotency_key, request_fingerprint,
                                conversation_id, correlation_id)
        VALUES (p_property_id, p_checkin, p_checkout, v_guests,
                (SELECT sum(t) FROM unnest(v_unit_totals) AS t), v_currency,
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
                                NULL::bigint, NULL::date, NULL::integer;
        ELSE
            RETURN QUERY SELECT v_refusal, NULL::uuid, NULL::timestamptz, NULL::bigint, NULL::text,
                                NULL::bigint,
                                CASE WHEN v_refusal IN ('unavailable', 'closed_to_departure')
                                          AND v_refusal = v_rule THEN p_checkout
                                     WHEN v_refusal = v_rule THEN p_checkin
                                     WHEN v_refusal = 'stop_sell' THEN v_stopped END,
                                CASE WHEN v_refusal = v_rule THEN v_rule_bound END;
        END IF;
        RETURN;
    END IF;
    IF v_sellable <> v_nights THEN
        RAISE EXCEPTION 'hold_unavailable' USING ERRCODE = 'HL001';
    END IF;

    -- The hold's lines, its nights and its outbox row, in one statement.
    WITH units AS (
        INSERT INTO hold_units (hold_id, unit, room_type_id, adults, children_ages, total_cents)
        SELECT v_hold.id, u.unit, u.room_type_id, u.adults, u.children_ages,
               v_unit_totals[u.unit]
        FROM request_units(p_units) u
    ), nights AS (
        INSERT INTO hold_nights (hold_id, room_type_id, date, qty)
        SELECT v_hold.id, w.room_type_id, d::date, w.qty
        FROM unnest(v_room_type_ids, v_quantities) AS w(room_type_id, qty),
             generate_series(p_checkin, p_checkout - 1, interval '1 day') AS d
    )
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
        UPDATE ari_days a SET inv_held = a.inv_held + v_quantities[1]
        WHERE a.room_type_id = v_room_type_ids[1] AND a.date = p_checkin
          AND NOT a.stop_sell
          AND a.inv_held + a.inv_booked + a.inv_blocked + v_quantities[1] <= a.inv_total
        RETURNING (a.rate_cents, a.extra_adult_cents) IS DISTINCT FROM (v_rates[1][1], v_extras[1][1])
        INTO v_changed;
        GET DIAGNOSTICS v_claimed = ROW_COUNT;
    ELSE
        -- Several rows: lock them in (room type, date) order, then update.
        WITH locked AS (
            SELECT a.id FROM ari_days a
            WHERE a.room_type_id = ANY (v_room_type_ids)
              AND a.date >= p_checkin AND a.date < p_checkout
            ORDER BY a.room_type_id, a.date
            FOR NO KEY UPDATE OF a
        ), claimed AS (
            UPDATE ari_days a
            SET inv_held = a.inv_held
                           + v_quantities[array_position(v_room_type_ids, a.room_type_id)]
            FROM locked l
            WHERE a.id = l.id AND NOT a.stop_sell
              AND a.inv_held + a.inv_booked + a.inv_blocked
                  + v_quantities[array_position(v_room_type_ids, a.room_type_id)] <= a.inv_total
            RETURNING a.room_type_id, a.date, a.rate_cents, a.extra_adult_cents
        )
        SELECT count(*),
               bool_or((c.rate_cents, c.extra_adult_cents) IS DISTINCT FROM
                       (v_rates[array_position(v_room_type_ids, c.room_type_id)]
                               [c.date - p_checkin + 1],
                        v_extras[array_position(v_room_type_ids, c.room_type_id)]
                                [c.date - p_checkin + 1]))
        INTO v_claimed, v_changed
        FROM claimed c;
    END IF;
    IF v_claimed <> v_nights THEN
        RAISE EXCEPTION 'hold_unavailable' USING ERRCODE = 'HL001';
    END IF;
    IF v_changed THEN
        -- A price changed since the read: the units are priced from the rows now locked.
        SELECT array_agg(x.total_cents ORDER BY x.unit) INTO v_unit_totals
        FROM unit_prices(p_units, p_property_id, p_checkin, p_checkout, v_band_ages,
                         v_band_pcts) AS x;
        UPDATE hold_units u SET total_cents = v_unit_totals[u.unit] WHERE u.hold_id = v_hold.id;
        UPDATE holds h SET total_cents = (SELECT sum(t) FROM unnest(v_unit_totals) AS t)
        WHERE h.id = v_hold.id
        RETURNING h.* INTO v_hold;
    END IF;

    RETURN QUERY SELECT 'created', v_hold.id, v_hold.expires_at, v_hold.total_cents, v_hold.currency,
                        v_outbox, NULL::date, NULL::integer;
END
$$;

CREATE FUNCTION public.expire_due_holds(p_limit integer, p_correlation_id text DEFAULT NULL::text) RETURNS TABLE(hold_id uuid, outbox_id bigint)
    LANGUAGE plpgsql
    SET lock_timeout TO '2s'
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

CREATE FUNCTION public.guest_last_activity(p_contact_hash text) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    AS $$
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

CREATE FUNCTION public.night_cents(p_rate_cents bigint, p_extra_cents bigint, p_extra_adults integer, p_child_percents integer[]) RETURNS TABLE(cents bigint)
    LANGUAGE sql IMMUTABLE ROWS 1 PARALLEL SAFE
    AS $$
    -- Parties of up to two paying children, most families, skip the subquery (a quote
    -- prices every night of every room type).
    SELECT p_rate_cents + p_extra_cents * p_extra_adults
           + CASE cardinality(p_child_percents)
                 WHEN 0 THEN 0
                 WHEN 1 THEN (p_extra_cents * p_child_percents[1] + 50) / 100
                 WHEN 2 THEN (p_extra_cents * p_child_percents[1] + 50) / 100
                             + (p_extra_cents * p_child_percents[2] + 50) / 100
                 ELSE (SELECT sum((p_extra_cents * pct + 50) / 100)::bigint
                       FROM unnest(p_child_percents) AS pct)
             END
$$;

CREATE FUNCTION public.party_seats(p_adults integer, p_children integer[], p_band_ages integer[], p_band_pcts integer[]) RETURNS TABLE(guests integer, as_adults integer, child_percents integer[])
    LANGUAGE sql IMMUTABLE ROWS 1 PARALLEL SAFE
    AS $$
    SELECT p_adults + count(*)::integer,
           p_adults + count(*) FILTER (WHERE c.percent IS NULL)::integer,
           coalesce(array_agg(c.percent ORDER BY g.age DESC)
                        FILTER (WHERE c.percent IS NOT NULL), '{}')
    FROM unnest(p_children) AS g(age)
    LEFT JOIN LATERAL (
        SELECT b.pct AS percent FROM unnest(p_band_ages, p_band_pcts) AS b(max_age, pct)
        WHERE b.max_age >= g.age ORDER BY b.max_age LIMIT 1
    ) AS c ON true
$$;

CREATE FUNCTION public.release_hold(p_hold_id uuid, p_status text, p_reason text, p_correlation_id text) RETURNS TABLE(outcome text, outbox_id bigint)
    LANGUAGE plpgsql
    SET lock_timeout TO '2s'
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

CREATE FUNCTION public.release_hold_nights(p_hold_ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    WITH nights AS (
        SELECT n.room_type_id, n.date, sum(n.qty) AS qty
        FROM hold_nights n WHERE n.hold_id = ANY (p_hold_ids)
        GROUP BY n.room_type_id, n.date
    ), locked AS (
        SELECT a.id, n.qty
        FROM ari_days a JOIN nights n ON a.room_type_id = n.room_type_id AND a.date = n.date
        ORDER BY a.room_type_id, a.date
        FOR NO KEY UPDATE OF a
    )
    UPDATE ari_days a SET inv_held = a.inv_held - l.qty FROM locked l WHERE a.id = l.id;
END
$$;

CREATE FUNCTION public.request_units(p_units jsonb) RETURNS TABLE(unit integer, room_type_id bigint, adults integer, children_ages integer[])
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT u.ord::integer, u.room_type_id, u.adults, coalesce(u.children_ages, '{}')
    FROM ROWS FROM (jsonb_to_recordset(p_units)
                    AS (room_type_id bigint, adults integer, children_ages integer[]))
         WITH ORDINALITY AS u(room_type_id, adults, children_ages, ord)
$$;

CREATE FUNCTION public.reservation_code() RETURNS text
    LANGUAGE sql
    AS $$
    SELECT string_agg(substr('ABCDEFGHJKMNPQRSTUVWXYZ23456789', 1 + floor(random() * 31)::int, 1), '')
    FROM generate_series(1, 6)
$$;

CREATE FUNCTION public.stay_rule(p_nights integer, p_closed_to_arrival boolean, p_min_stay integer, p_max_stay integer, p_departure_found boolean, p_closed_to_departure boolean) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN p_closed_to_arrival THEN 'closed_to_arrival'::text WHEN (p_nights < p_min_stay) THEN 'min_stay'::text WHEN (p_nights > p_max_stay) THEN 'max_stay'::text WHEN (NOT p_departure_found) THEN 'unavailable'::text WHEN p_closed_to_departure THEN 'closed_to_departure'::text ELSE NULL::text END;

CREATE FUNCTION public.unit_party(p_base integer, p_max_adults integer, p_max_occupancy integer, p_adults integer, p_guests integer, p_as_adults integer, p_child_percents integer[]) RETURNS TABLE(fits boolean, extra_adults integer, child_percents integer[])
    LANGUAGE sql IMMUTABLE ROWS 1 PARALLEL SAFE
    AS $$
    SELECT p_adults >= 1 AND p_guests <= p_max_occupancy AND p_as_adults <= p_max_adults,
           greatest(p_as_adults - p_base, 0),
           p_child_percents[greatest(p_base - p_as_adults, 0) + 1:]
$$;

CREATE FUNCTION public.unit_prices(p_units jsonb, p_property_id bigint, p_checkin date, p_checkout date, p_band_ages integer[], p_band_pcts integer[]) RETURNS TABLE(unit integer, room_type_id bigint, fits boolean, total_cents bigint)
    LANGUAGE sql STABLE ROWS 2
    AS $$
    SELECT u.unit, u.room_type_id, x.fits, t.total
    FROM request_units(p_units) AS u
    JOIN room_types rt ON rt.id = u.room_type_id AND rt.property_id = p_property_id
    CROSS JOIN LATERAL party_seats(u.adults, u.children_ages, p_band_ages, p_band_pcts) AS ps
    CROSS JOIN LATERAL unit_party(rt.base_occupancy, rt.max_adults, rt.max_occupancy, u.adults,
                                  ps.guests, ps.as_adults, ps.child_percents) AS x
    CROSS JOIN LATERAL (
        SELECT sum(p.cents) AS total
        FROM ari_days a
        CROSS JOIN LATERAL night_cents(a.rate_cents, a.extra_adult_cents, x.extra_adults,
                                       x.child_percents) AS p
        WHERE a.room_type_id = u.room_type_id AND a.date >= p_checkin AND a.date < p_checkout
    ) AS t
$$;

CREATE TABLE public.api_keys (
    id bigint NOT NULL,
    property_id bigint NOT NULL,
    name text NOT NULL,
    scope text NOT NULL,
    key_hmac text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT api_keys_scope_check CHECK ((scope = ANY (ARRAY['read'::text, 'write'::text])))
);

ALTER TABLE public.api_keys ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.api_keys_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.api_usage (
    key_id bigint NOT NULL,
    window_start timestamp with time zone NOT NULL,
    count integer DEFAULT 1 NOT NULL
);

CREATE TABLE public.ari_days (
    id bigint NOT NULL,
    property_id bigint NOT NULL,
    room_type_id bigint NOT NULL,
    date date NOT NULL,
    inv_total integer NOT NULL,
    inv_held integer DEFAULT 0 NOT NULL,
    inv_booked integer DEFAULT 0 NOT NULL,
    rate_cents bigint NOT NULL,
    stop_sell boolean DEFAULT false NOT NULL,
    inv_blocked integer DEFAULT 0 NOT NULL,
    extra_adult_cents bigint DEFAULT 0 NOT NULL,
    min_stay integer,
    max_stay integer,
    closed_to_arrival boolean DEFAULT false NOT NULL,
    closed_to_departure boolean DEFAULT false NOT NULL,
    manual text[] DEFAULT '{}'::text[] NOT NULL,
    CONSTRAINT ari_days_extra_adult_cents_check CHECK ((extra_adult_cents >= 0)),
    CONSTRAINT ari_days_inv_total_check CHECK ((inv_total >= 0)),
    CONSTRAINT ari_days_inventory_check CHECK (((inv_held >= 0) AND (inv_booked >= 0) AND (inv_blocked >= 0) AND (((inv_held + inv_booked) + inv_blocked) <= inv_total))),
    CONSTRAINT ari_days_manual_check CHECK ((manual <@ ARRAY['inv_total'::text, 'rate_cents'::text, 'extra_adult_cents'::text, 'min_stay'::text, 'max_stay'::text, 'closed_to_arrival'::text, 'closed_to_departure'::text, 'stop_sell'::text])),
    CONSTRAINT ari_days_max_stay_check CHECK ((max_stay >= 1)),
    CONSTRAINT ari_days_min_stay_check CHECK ((min_stay >= 1)),
    CONSTRAINT ari_days_rate_cents_check CHECK ((rate_cents >= 0)),
    CONSTRAINT ari_days_stay_range_check CHECK ((max_stay >= min_stay))
);

ALTER TABLE public.ari_days ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.ari_days_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.block_nights (
    block_id bigint NOT NULL,
    room_type_id bigint NOT NULL,
    date date NOT NULL,
    qty integer NOT NULL,
    CONSTRAINT block_nights_qty_check CHECK ((qty > 0))
);

CREATE TABLE public.blocks (
    id bigint NOT NULL,
    property_id bigint NOT NULL,
    room_type_id bigint NOT NULL,
    source text NOT NULL,
    calendar_id bigint,
    external_uid text,
    checkin date NOT NULL,
    checkout date NOT NULL,
    units integer NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    conflict_nights date[] DEFAULT '{}'::date[] NOT NULL,
    conflict_since timestamp with time zone,
    conflict_resolved_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    released_at timestamp with time zone,
    CONSTRAINT blocks_ical_check CHECK (((source = 'ical'::text) = ((calendar_id IS NOT NULL) AND (external_uid IS NOT NULL)))),
    CONSTRAINT blocks_source_check CHECK ((source = ANY (ARRAY['ical'::text, 'manual'::text]))),
    CONSTRAINT blocks_status_check CHECK ((status = ANY (ARRAY['active'::text, 'released'::text, 'echo'::text]))),
    CONSTRAINT blocks_stay_check CHECK ((checkout > checkin)),
    CONSTRAINT blocks_units_check CHECK ((units > 0))
);

CREATE TABLE public.hold_nights (
    hold_id uuid NOT NULL,
    room_type_id bigint NOT NULL,
    date date NOT NULL,
    qty integer NOT NULL,
    CONSTRAINT hold_nights_qty_check CHECK ((qty > 0))
);

CREATE TABLE public.holds (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    property_id bigint NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    checkin date NOT NULL,
    checkout date NOT NULL,
    guests integer NOT NULL,
    total_cents bigint NOT NULL,
    currency text NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    create_idempotency_key text NOT NULL,
    request_fingerprint text NOT NULL,
    conversation_id uuid,
    cancel_reason text,
    correlation_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    closed_at timestamp with time zone,
    CONSTRAINT holds_closed_at_check CHECK (((status = 'active'::text) = (closed_at IS NULL))),
    CONSTRAINT holds_guests_check CHECK ((guests > 0)),
    CONSTRAINT holds_status_check CHECK ((status = ANY (ARRAY['active'::text, 'expired'::text, 'cancelled'::text, 'converted'::text]))),
    CONSTRAINT holds_stay_check CHECK ((checkout > checkin)),
    CONSTRAINT holds_total_cents_check CHECK ((total_cents >= 0))
);

CREATE TABLE public.reservations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    hold_id uuid NOT NULL,
    payment_id uuid NOT NULL,
    property_id bigint NOT NULL,
    code text NOT NULL,
    status text DEFAULT 'confirmed'::text NOT NULL,
    checkin date NOT NULL,
    checkout date NOT NULL,
    guests integer NOT NULL,
    total_cents bigint NOT NULL,
    currency text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    correlation_id text,
    cancelled_at timestamp with time zone,
    cancel_reason text,
    guest_name_sealed bytea,
    guest_name_index text[] DEFAULT '{}'::text[] NOT NULL,
    CONSTRAINT reservations_cancelled_check CHECK (((status = 'cancelled'::text) = (cancelled_at IS NOT NULL))),
    CONSTRAINT reservations_status_check CHECK ((status = ANY (ARRAY['confirmed'::text, 'cancelled'::text]))),
    CONSTRAINT reservations_stay_check CHECK ((checkout > checkin))
);

CREATE VIEW public.ari_night_facts AS
 SELECT facts.room_type_id,
    facts.date,
    (COALESCE(sum(facts.qty) FILTER (WHERE (facts.fact = 'held'::text)), (0)::bigint))::integer AS held,
    (COALESCE(sum(facts.qty) FILTER (WHERE (facts.fact = 'booked'::text)), (0)::bigint))::integer AS booked,
    (COALESCE(sum(facts.qty) FILTER (WHERE (facts.fact = 'blocked'::text)), (0)::bigint))::integer AS blocked
   FROM ( SELECT n.room_type_id,
            n.date,
            n.qty,
            'held'::text AS fact
           FROM (public.hold_nights n
             JOIN public.holds h ON ((h.id = n.hold_id)))
          WHERE (h.status = 'active'::text)
        UNION ALL
         SELECT n.room_type_id,
            n.date,
            n.qty,
            'booked'::text
           FROM (public.hold_nights n
             JOIN public.reservations r ON ((r.hold_id = n.hold_id)))
          WHERE (r.status = 'confirmed'::text)
        UNION ALL
         SELECT n.room_type_id,
            n.date,
            n.qty,
            'blocked'::text
           FROM (public.block_nights n
             JOIN public.blocks b ON ((b.id = n.block_id)))
          WHERE (b.status = 'active'::text)) facts
  GROUP BY facts.room_type_id, facts.date;

CREATE TABLE public.audit_log (
    id bigint NOT NULL,
    property_id bigint,
    actor text NOT NULL,
    command text NOT NULL,
    arguments jsonb NOT NULL,
    result jsonb NOT NULL,
    correlation_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.audit_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE public.blocks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.blocks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.calendars (
    id bigint NOT NULL,
    property_id bigint NOT NULL,
    room_type_id bigint NOT NULL,
    name text NOT NULL,
    import_url_sealed text,
    units integer DEFAULT 1 NOT NULL,
    rotation integer DEFAULT 0 NOT NULL,
    export_digest text NOT NULL,
    exported_unavailable date[] DEFAULT '{}'::date[] NOT NULL,
    exported_at timestamp with time zone,
    etag text,
    last_modified text,
    last_attempt_at timestamp with time zone,
    last_success_at timestamp with time zone,
    last_error text,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    event_count integer,
    ignored_events integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT calendars_units_check CHECK ((units > 0))
);

ALTER TABLE public.calendars ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.calendars_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.cancellation_tiers (
    property_id bigint NOT NULL,
    days_before integer NOT NULL,
    refund_percent integer NOT NULL,
    CONSTRAINT cancellation_tiers_days_before_check CHECK ((days_before >= 0)),
    CONSTRAINT cancellation_tiers_refund_percent_check CHECK (((refund_percent >= 0) AND (refund_percent <= 100)))
);

CREATE TABLE public.child_rates (
    property_id bigint NOT NULL,
    max_age integer NOT NULL,
    percent integer NOT NULL,
    CONSTRAINT child_rates_max_age_check CHECK (((max_age >= 0) AND (max_age <= 17))),
    CONSTRAINT child_rates_percent_check CHECK (((percent >= 0) AND (percent <= 100)))
);

CREATE TABLE public.console_attempts (
    subject text NOT NULL,
    window_start timestamp with time zone NOT NULL,
    count integer DEFAULT 1 NOT NULL
);

CREATE TABLE public.console_codes (
    contact_hash text NOT NULL,
    property_id bigint NOT NULL,
    code_hmac text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT console_codes_attempts_check CHECK (((attempts >= 0) AND (attempts <= 5)))
);

CREATE TABLE public.console_commands (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    property_id bigint NOT NULL,
    contact_hash text NOT NULL,
    form_token text NOT NULL,
    command text NOT NULL,
    arguments jsonb NOT NULL,
    status text DEFAULT 'queued'::text NOT NULL,
    result jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    CONSTRAINT console_commands_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'done'::text, 'refused'::text])))
);

CREATE TABLE public.console_sessions (
    id_hash text NOT NULL,
    contact_hash text NOT NULL,
    csrf_token text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE public.contact_aliases (
    alias_hash text NOT NULL,
    contact_hash text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.contacts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    contact_hash text NOT NULL,
    phone_encrypted bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.conversations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    property_id bigint NOT NULL,
    contact_hash text NOT NULL,
    state text DEFAULT 'new'::text NOT NULL,
    language text,
    context jsonb DEFAULT '{}'::jsonb NOT NULL,
    last_inbound_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_until timestamp with time zone,
    CONSTRAINT conversations_state_check CHECK ((state = ANY (ARRAY['new'::text, 'collecting'::text, 'quoted'::text, 'awaiting_payment'::text, 'booked'::text, 'requote'::text, 'human'::text])))
);

CREATE TABLE public.hold_units (
    hold_id uuid NOT NULL,
    unit integer NOT NULL,
    room_type_id bigint NOT NULL,
    adults integer NOT NULL,
    children_ages integer[] DEFAULT '{}'::integer[] NOT NULL,
    total_cents bigint NOT NULL,
    CONSTRAINT hold_units_adults_check CHECK ((adults >= 1)),
    CONSTRAINT hold_units_total_cents_check CHECK ((total_cents >= 0)),
    CONSTRAINT hold_units_unit_check CHECK ((unit >= 1))
);

CREATE TABLE public.idempotency_keys (
    id bigint NOT NULL,
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    response jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.idempotency_keys ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.idempotency_keys_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.messages (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    direction text NOT NULL,
    body_encrypted bytea NOT NULL,
    provider_message_id text,
    dedupe_key text,
    status text NOT NULL,
    lease_until timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    sent_at timestamp with time zone,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    template jsonb,
    correlation_id text,
    attempt_started_at timestamp with time zone,
    interactive jsonb,
    CONSTRAINT messages_direction_check CHECK ((direction = ANY (ARRAY['in'::text, 'out'::text]))),
    CONSTRAINT messages_direction_status_check CHECK (((direction = 'in'::text) = (status = 'received'::text))),
    CONSTRAINT messages_sent_check CHECK (((status = 'failed'::text) OR ((status = ANY (ARRAY['sent'::text, 'delivered'::text, 'read'::text])) = (sent_at IS NOT NULL)))),
    CONSTRAINT messages_status_check CHECK ((status = ANY (ARRAY['received'::text, 'queued'::text, 'sent'::text, 'delivered'::text, 'read'::text, 'failed'::text, 'undeliverable'::text])))
);

ALTER TABLE public.messages ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.messages_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.outbox_events (
    id bigint NOT NULL,
    event_type text NOT NULL,
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    correlation_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    enqueued_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    lease_until timestamp with time zone,
    sent_at timestamp with time zone,
    last_error text,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    dead_at timestamp with time zone
);

ALTER TABLE public.outbox_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.outbox_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.payments (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    provider text NOT NULL,
    provider_object_id text,
    payment_intent text,
    hold_id uuid NOT NULL,
    status text DEFAULT 'created'::text NOT NULL,
    amount_cents bigint,
    currency text,
    refund_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    refunded_cents bigint DEFAULT 0 NOT NULL,
    dispute_status text,
    CONSTRAINT payments_amount_cents_check CHECK ((amount_cents >= 0)),
    CONSTRAINT payments_provider_check CHECK ((provider = ANY (ARRAY['stripe'::text, 'offline'::text]))),
    CONSTRAINT payments_provider_object_id_check CHECK (((provider = 'offline'::text) = (provider_object_id IS NULL))),
    CONSTRAINT payments_refunded_cents_check CHECK ((refunded_cents >= 0)),
    CONSTRAINT payments_status_check CHECK ((status = ANY (ARRAY['created'::text, 'pending'::text, 'succeeded'::text, 'failed'::text, 'needs_refund'::text, 'refunded'::text])))
);

CREATE TABLE public.processed_events (
    id bigint NOT NULL,
    source text NOT NULL,
    external_id text NOT NULL,
    event_type text NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    task_name text,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    enqueued_at timestamp with time zone,
    processed_at timestamp with time zone,
    outcome text,
    reprocess_generation integer DEFAULT 0 NOT NULL,
    correlation_id text,
    CONSTRAINT processed_events_source_check CHECK ((source = ANY (ARRAY['stripe'::text, 'whatsapp'::text])))
);

ALTER TABLE public.processed_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.processed_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.properties (
    id bigint NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    timezone text NOT NULL,
    currency text NOT NULL,
    whatsapp_phone_number_id text,
    settings jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT properties_currency_check CHECK ((currency ~ '^[A-Z]{3}$'::text))
);

ALTER TABLE public.properties ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.properties_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.provider_pauses (
    provider text NOT NULL,
    paused_at timestamp with time zone DEFAULT now() NOT NULL,
    paused_by text NOT NULL,
    reason text,
    CONSTRAINT provider_pauses_provider_check CHECK ((provider = ANY (ARRAY['stripe'::text, 'whatsapp'::text])))
);

CREATE TABLE public.refunds (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    payment_id uuid NOT NULL,
    reservation_id uuid,
    amount_cents bigint NOT NULL,
    reason text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    stripe_refund_id text,
    idempotency_key text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT refunds_amount_cents_check CHECK ((amount_cents > 0)),
    CONSTRAINT refunds_reason_check CHECK ((reason = ANY (ARRAY['cancellation'::text, 'stripe_dashboard'::text, 'needs_refund'::text]))),
    CONSTRAINT refunds_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'succeeded'::text, 'failed'::text, 'offline'::text])))
);

CREATE TABLE public.reservation_units (
    reservation_id uuid NOT NULL,
    unit integer NOT NULL,
    room_type_id bigint NOT NULL,
    adults integer NOT NULL,
    children_ages integer[] DEFAULT '{}'::integer[] NOT NULL,
    total_cents bigint NOT NULL,
    CONSTRAINT reservation_units_adults_check CHECK ((adults >= 1)),
    CONSTRAINT reservation_units_total_cents_check CHECK ((total_cents >= 0)),
    CONSTRAINT reservation_units_unit_check CHECK ((unit >= 1))
);

CREATE TABLE public.room_types (
    id bigint NOT NULL,
    property_id bigint NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    max_occupancy integer NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    base_occupancy integer NOT NULL,
    max_adults integer NOT NULL,
    CONSTRAINT room_types_base_occupancy_check CHECK (((base_occupancy >= 1) AND (base_occupancy <= max_occupancy))),
    CONSTRAINT room_types_max_adults_check CHECK (((max_adults >= 1) AND (max_adults <= max_occupancy))),
    CONSTRAINT room_types_max_occupancy_check CHECK ((max_occupancy > 0))
);

ALTER TABLE public.room_types ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.room_types_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.staff_numbers (
    property_id bigint NOT NULL,
    contact_hash text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_key_hmac_key UNIQUE (key_hmac);

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.api_usage
    ADD CONSTRAINT api_usage_pkey PRIMARY KEY (key_id, window_start);

ALTER TABLE ONLY public.ari_days
    ADD CONSTRAINT ari_days_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ari_days
    ADD CONSTRAINT ari_days_room_type_id_date_key UNIQUE (room_type_id, date);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.block_nights
    ADD CONSTRAINT block_nights_pkey PRIMARY KEY (block_id, room_type_id, date);

ALTER TABLE ONLY public.blocks
    ADD CONSTRAINT blocks_calendar_id_external_uid_key UNIQUE (calendar_id, external_uid);

ALTER TABLE ONLY public.blocks
    ADD CONSTRAINT blocks_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.calendars
    ADD CONSTRAINT calendars_export_digest_key UNIQUE (export_digest);

ALTER TABLE ONLY public.calendars
    ADD CONSTRAINT calendars_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.calendars
    ADD CONSTRAINT calendars_property_id_name_key UNIQUE (property_id, name);

ALTER TABLE ONLY public.cancellation_tiers
    ADD CONSTRAINT cancellation_tiers_pkey PRIMARY KEY (property_id, days_before);

ALTER TABLE ONLY public.child_rates
    ADD CONSTRAINT child_rates_pkey PRIMARY KEY (property_id, max_age);

ALTER TABLE ONLY public.console_attempts
    ADD CONSTRAINT console_attempts_pkey PRIMARY KEY (subject, window_start);

ALTER TABLE ONLY public.console_codes
    ADD CONSTRAINT console_codes_pkey PRIMARY KEY (contact_hash);

ALTER TABLE ONLY public.console_commands
    ADD CONSTRAINT console_commands_form_token_key UNIQUE (form_token);

ALTER TABLE ONLY public.console_commands
    ADD CONSTRAINT console_commands_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.console_sessions
    ADD CONSTRAINT console_sessions_pkey PRIMARY KEY (id_hash);

ALTER TABLE ONLY public.contact_aliases
    ADD CONSTRAINT contact_aliases_pkey PRIMARY KEY (alias_hash);

ALTER TABLE ONLY public.contacts
    ADD CONSTRAINT contacts_contact_hash_key UNIQUE (contact_hash);

ALTER TABLE ONLY public.contacts
    ADD CONSTRAINT contacts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_property_id_contact_hash_key UNIQUE (property_id, contact_hash);

ALTER TABLE ONLY public.hold_nights
    ADD CONSTRAINT hold_nights_pkey PRIMARY KEY (hold_id, room_type_id, date);

ALTER TABLE ONLY public.hold_units
    ADD CONSTRAINT hold_units_pkey PRIMARY KEY (hold_id, unit);

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_property_id_create_idempotency_key_key UNIQUE (property_id, create_idempotency_key);

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_scope_key_key UNIQUE (scope, key);

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_dedupe_key_key UNIQUE (dedupe_key);

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.outbox_events
    ADD CONSTRAINT outbox_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_provider_provider_object_id_key UNIQUE (provider, provider_object_id);

ALTER TABLE ONLY public.processed_events
    ADD CONSTRAINT processed_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.processed_events
    ADD CONSTRAINT processed_events_source_external_id_key UNIQUE (source, external_id);

ALTER TABLE ONLY public.properties
    ADD CONSTRAINT properties_code_key UNIQUE (code);

ALTER TABLE ONLY public.properties
    ADD CONSTRAINT properties_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.properties
    ADD CONSTRAINT properties_whatsapp_phone_number_id_key UNIQUE (whatsapp_phone_number_id);

ALTER TABLE ONLY public.provider_pauses
    ADD CONSTRAINT provider_pauses_pkey PRIMARY KEY (provider);

ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_idempotency_key_key UNIQUE (idempotency_key);

ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_stripe_refund_id_key UNIQUE (stripe_refund_id);

ALTER TABLE ONLY public.reservation_units
    ADD CONSTRAINT reservation_units_pkey PRIMARY KEY (reservation_id, unit);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_code_key UNIQUE (code);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_hold_id_key UNIQUE (hold_id);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.room_types
    ADD CONSTRAINT room_types_id_property_id_key UNIQUE (id, property_id);

ALTER TABLE ONLY public.room_types
    ADD CONSTRAINT room_types_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.room_types
    ADD CONSTRAINT room_types_property_id_code_key UNIQUE (property_id, code);

ALTER TABLE ONLY public.staff_numbers
    ADD CONSTRAINT staff_numbers_pkey PRIMARY KEY (property_id, contact_hash);

CREATE INDEX ari_days_property_id_date_idx ON public.ari_days USING btree (property_id, date);

CREATE INDEX audit_log_property_id_created_at_idx ON public.audit_log USING btree (property_id, created_at);

CREATE INDEX block_nights_room_type_id_date_idx ON public.block_nights USING btree (room_type_id, date);

CREATE INDEX blocks_open_conflict_idx ON public.blocks USING btree (property_id) WHERE ((conflict_nights <> '{}'::date[]) AND (status = 'active'::text));

CREATE INDEX console_commands_created_at_idx ON public.console_commands USING btree (created_at);

CREATE INDEX console_sessions_contact_hash_idx ON public.console_sessions USING btree (contact_hash);

CREATE INDEX contact_aliases_contact_hash_idx ON public.contact_aliases USING btree (contact_hash);

CREATE INDEX conversations_contact_hash_idx ON public.conversations USING btree (contact_hash);

CREATE INDEX holds_active_expires_at_idx ON public.holds USING btree (expires_at) WHERE (status = 'active'::text);

CREATE INDEX holds_conversation_id_idx ON public.holds USING btree (conversation_id) WHERE (conversation_id IS NOT NULL);

CREATE INDEX messages_conversation_id_seq_idx ON public.messages USING btree (conversation_id, seq);

CREATE UNIQUE INDEX messages_outbound_provider_message_id_key ON public.messages USING btree (provider_message_id) WHERE ((direction = 'out'::text) AND (provider_message_id IS NOT NULL));

CREATE INDEX outbox_events_aggregate_idx ON public.outbox_events USING btree (aggregate_type, aggregate_id);

CREATE INDEX outbox_events_dead_idx ON public.outbox_events USING btree (dead_at) WHERE (dead_at IS NOT NULL);

CREATE INDEX outbox_events_due_idx ON public.outbox_events USING btree (next_attempt_at) WHERE ((enqueued_at IS NULL) AND (dead_at IS NULL));

CREATE INDEX outbox_events_enqueued_at_idx ON public.outbox_events USING btree (enqueued_at) WHERE (enqueued_at IS NOT NULL);

CREATE INDEX payments_hold_id_idx ON public.payments USING btree (hold_id);

CREATE INDEX payments_needs_refund_idx ON public.payments USING btree (created_at) WHERE (status = 'needs_refund'::text);

CREATE UNIQUE INDEX payments_offline_hold_id_key ON public.payments USING btree (hold_id) WHERE (provider = 'offline'::text);

CREATE INDEX payments_payment_intent_idx ON public.payments USING btree (payment_intent) WHERE (payment_intent IS NOT NULL);

CREATE INDEX processed_events_processed_at_idx ON public.processed_events USING btree (processed_at) WHERE (processed_at IS NOT NULL);

CREATE INDEX processed_events_unfinished_idx ON public.processed_events USING btree (received_at) WHERE (processed_at IS NULL);

CREATE INDEX refunds_payment_id_idx ON public.refunds USING btree (payment_id);

CREATE INDEX reservations_guest_name_index_idx ON public.reservations USING gin (guest_name_index);

CREATE INDEX reservations_property_id_checkin_idx ON public.reservations USING btree (property_id, checkin);

CREATE TRIGGER audit_log_append_only BEFORE DELETE OR UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.audit_log_append_only();

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.api_usage
    ADD CONSTRAINT api_usage_key_id_fkey FOREIGN KEY (key_id) REFERENCES public.api_keys(id);

ALTER TABLE ONLY public.ari_days
    ADD CONSTRAINT ari_days_room_type_fkey FOREIGN KEY (room_type_id, property_id) REFERENCES public.room_types(id, property_id);

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.block_nights
    ADD CONSTRAINT block_nights_block_id_fkey FOREIGN KEY (block_id) REFERENCES public.blocks(id);

ALTER TABLE ONLY public.blocks
    ADD CONSTRAINT blocks_calendar_id_fkey FOREIGN KEY (calendar_id) REFERENCES public.calendars(id);

ALTER TABLE ONLY public.blocks
    ADD CONSTRAINT blocks_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.blocks
    ADD CONSTRAINT blocks_room_type_fkey FOREIGN KEY (room_type_id, property_id) REFERENCES public.room_types(id, property_id);

ALTER TABLE ONLY public.calendars
    ADD CONSTRAINT calendars_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.calendars
    ADD CONSTRAINT calendars_room_type_fkey FOREIGN KEY (room_type_id, property_id) REFERENCES public.room_types(id, property_id);

ALTER TABLE ONLY public.cancellation_tiers
    ADD CONSTRAINT cancellation_tiers_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.child_rates
    ADD CONSTRAINT child_rates_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.console_codes
    ADD CONSTRAINT console_codes_contact_hash_fkey FOREIGN KEY (contact_hash) REFERENCES public.contacts(contact_hash);

ALTER TABLE ONLY public.console_codes
    ADD CONSTRAINT console_codes_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.console_commands
    ADD CONSTRAINT console_commands_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.console_sessions
    ADD CONSTRAINT console_sessions_contact_hash_fkey FOREIGN KEY (contact_hash) REFERENCES public.contacts(contact_hash);

ALTER TABLE ONLY public.contact_aliases
    ADD CONSTRAINT contact_aliases_contact_hash_fkey FOREIGN KEY (contact_hash) REFERENCES public.contacts(contact_hash);

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_contact_hash_fkey FOREIGN KEY (contact_hash) REFERENCES public.contacts(contact_hash);

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.hold_nights
    ADD CONSTRAINT hold_nights_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.holds(id);

ALTER TABLE ONLY public.hold_units
    ADD CONSTRAINT hold_units_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.holds(id);

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id);

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.messages
    ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id);

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.holds(id);

ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_payment_id_fkey FOREIGN KEY (payment_id) REFERENCES public.payments(id);

ALTER TABLE ONLY public.refunds
    ADD CONSTRAINT refunds_reservation_id_fkey FOREIGN KEY (reservation_id) REFERENCES public.reservations(id);

ALTER TABLE ONLY public.reservation_units
    ADD CONSTRAINT reservation_units_reservation_id_fkey FOREIGN KEY (reservation_id) REFERENCES public.reservations(id);

ALTER TABLE ONLY public.reservation_units
    ADD CONSTRAINT reservation_units_room_type_id_fkey FOREIGN KEY (room_type_id) REFERENCES public.room_types(id);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.holds(id);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_payment_id_fkey FOREIGN KEY (payment_id) REFERENCES public.payments(id);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.room_types
    ADD CONSTRAINT room_types_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.staff_numbers
    ADD CONSTRAINT staff_numbers_contact_hash_fkey FOREIGN KEY (contact_hash) REFERENCES public.contacts(contact_hash);

ALTER TABLE ONLY public.staff_numbers
    ADD CONSTRAINT staff_numbers_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);
