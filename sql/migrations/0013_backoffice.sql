-- The back office (issue 15): what the inn's staff do, each command one transaction on the
-- worker, recorded in an append-only audit log.
--   * cancellation_tiers: the property's cancellation policy (refund percent by days
--     between the cancelling moment and the check-in date, in the property's timezone);
--   * payments: provider 'offline' (a walk-in paid at the desk, no provider object id),
--     refunded_cents and dispute_status as Stripe reports them;
--   * refunds: one row per refund of a payment (several partial ones possible). A cancel
--     writes it pending; its task calls Stripe with the row's idempotency key and
--     metadata.refund_id, so our own charge.refunded is recognised as ours whenever it
--     arrives. A refund made in Stripe's dashboard is recorded when its webhook arrives;
--   * reservations: cancelled_at / cancel_reason; a walk-in guest's name, sealed, with a
--     blind index (HMACs of its normalised words) to search it by;
--   * convert_hold converts a hold paid offline (no provider object id).
-- depends: 0012_rates

CREATE TABLE cancellation_tiers (
    property_id    bigint  NOT NULL REFERENCES properties (id),
    -- Cancelling at least this many days before the check-in date refunds refund_percent
    -- (the tier with the largest days_before that applies).
    days_before    integer NOT NULL CONSTRAINT cancellation_tiers_days_before_check CHECK (days_before >= 0),
    refund_percent integer NOT NULL
        CONSTRAINT cancellation_tiers_refund_percent_check CHECK (refund_percent BETWEEN 0 AND 100),
    CONSTRAINT cancellation_tiers_pkey PRIMARY KEY (property_id, days_before)
);

ALTER TABLE payments DROP CONSTRAINT payments_provider_check;
ALTER TABLE payments
    ADD CONSTRAINT payments_provider_check CHECK (provider IN ('stripe', 'offline')),
    ALTER COLUMN provider_object_id DROP NOT NULL,
    ADD CONSTRAINT payments_provider_object_id_check
        CHECK ((provider = 'offline') = (provider_object_id IS NULL)),
    ADD COLUMN refunded_cents bigint NOT NULL DEFAULT 0
        CONSTRAINT payments_refunded_cents_check CHECK (refunded_cents >= 0),
    -- Stripe's dispute status (needs_response, under_review, won, lost, …); NULL: none.
    ADD COLUMN dispute_status text;
-- One offline payment per hold (a Stripe payment is one per Checkout Session).
CREATE UNIQUE INDEX payments_offline_hold_id_key ON payments (hold_id) WHERE provider = 'offline';
-- Stripe's charge and dispute events name the payment intent.
CREATE INDEX payments_payment_intent_idx ON payments (payment_intent) WHERE payment_intent IS NOT NULL;

CREATE TABLE refunds (
    id               uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT refunds_pkey PRIMARY KEY,
    payment_id       uuid NOT NULL CONSTRAINT refunds_payment_id_fkey REFERENCES payments (id),
    reservation_id   uuid CONSTRAINT refunds_reservation_id_fkey REFERENCES reservations (id),
    amount_cents     bigint NOT NULL CONSTRAINT refunds_amount_cents_check CHECK (amount_cents > 0),
    -- cancellation: ours, by a cancel; stripe_dashboard: made in Stripe, seen by webhook.
    reason           text NOT NULL
        CONSTRAINT refunds_reason_check CHECK (reason IN ('cancellation', 'stripe_dashboard')),
    -- offline: a walk-in's money, given back at the desk (no provider to call).
    status           text NOT NULL DEFAULT 'pending'
        CONSTRAINT refunds_status_check CHECK (status IN ('pending', 'succeeded', 'failed', 'offline')),
    stripe_refund_id text CONSTRAINT refunds_stripe_refund_id_key UNIQUE,
    -- The Stripe Idempotency-Key of the one call that makes this refund.
    idempotency_key  text NOT NULL CONSTRAINT refunds_idempotency_key_key UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment_id_idx ON refunds (payment_id);

ALTER TABLE reservations
    ADD COLUMN cancelled_at      timestamptz,
    ADD COLUMN cancel_reason     text,
    -- A walk-in's guest name, AES-GCM sealed; guest_name_index holds an HMAC of each of its
    -- normalised words, so staff can find it by name without the name being readable.
    ADD COLUMN guest_name_sealed bytea,
    ADD COLUMN guest_name_index  text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT reservations_cancelled_check CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL));
CREATE INDEX reservations_guest_name_index_idx ON reservations USING gin (guest_name_index);
-- A day's arrivals, departures and in-house guests.
CREATE INDEX reservations_property_id_checkin_idx ON reservations (property_id, checkin);

-- What the staff did, one row per command: never updated, never deleted.
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT audit_log_pkey PRIMARY KEY,
    property_id    bigint NOT NULL CONSTRAINT audit_log_property_id_fkey REFERENCES properties (id),
    -- 'cli', or the contact hash of the staff member who sent the command.
    actor          text NOT NULL,
    command        text NOT NULL,
    -- Without PII: a guest's name is never here.
    arguments      jsonb NOT NULL,
    result         jsonb NOT NULL,
    correlation_id text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_property_id_created_at_idx ON audit_log (property_id, created_at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'HL002';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

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
