-- Rates and stay rules (issue 14).
--   * Occupancy pricing: a night's rate covers the room type's base_occupancy; each guest
--     beyond pays that night's extra_adult_cents, a child the percent of it its age band
--     gives (child_rates; a child older than every band counts as an adult).
--   * A party per unit: a hold, and the reservation it becomes, has one line per unit
--     (room type, adults, children's ages, its price); create_hold takes those lines.
--   * Stay rules on ari_days, of a stay arriving that date (min_stay, max_stay,
--     closed_to_arrival) or leaving it (closed_to_departure); a stay whose check-out date
--     the calendar does not have is unavailable.
--   * ari_days.manual names the values an inn set by hand; an import leaves them alone.
-- The price is computed in one place, here (party_seats, unit_party and night_cents), by
-- the quote's query and by create_hold, which prices the nights it has locked.
-- depends: 0011_channels

ALTER TABLE room_types
    ADD COLUMN base_occupancy integer,
    ADD COLUMN max_adults integer;
UPDATE room_types SET base_occupancy = max_occupancy, max_adults = max_occupancy;
ALTER TABLE room_types
    ALTER COLUMN base_occupancy SET NOT NULL,
    ALTER COLUMN max_adults SET NOT NULL,
    ADD CONSTRAINT room_types_base_occupancy_check
        CHECK (base_occupancy BETWEEN 1 AND max_occupancy),
    ADD CONSTRAINT room_types_max_adults_check CHECK (max_adults BETWEEN 1 AND max_occupancy);

-- Children's age bands of a property: a child of at most max_age pays percent of the
-- night's extra_adult_cents (the youngest band that fits).
CREATE TABLE child_rates (
    property_id bigint  NOT NULL REFERENCES properties (id),
    max_age     integer NOT NULL CONSTRAINT child_rates_max_age_check CHECK (max_age BETWEEN 0 AND 17),
    percent     integer NOT NULL CONSTRAINT child_rates_percent_check CHECK (percent BETWEEN 0 AND 100),
    CONSTRAINT child_rates_pkey PRIMARY KEY (property_id, max_age)
);

ALTER TABLE ari_days
    ADD COLUMN extra_adult_cents bigint NOT NULL DEFAULT 0
        CONSTRAINT ari_days_extra_adult_cents_check CHECK (extra_adult_cents >= 0),
    ADD COLUMN min_stay integer CONSTRAINT ari_days_min_stay_check CHECK (min_stay >= 1),
    ADD COLUMN max_stay integer CONSTRAINT ari_days_max_stay_check CHECK (max_stay >= 1),
    ADD COLUMN closed_to_arrival boolean NOT NULL DEFAULT false,
    ADD COLUMN closed_to_departure boolean NOT NULL DEFAULT false,
    ADD COLUMN manual text[] NOT NULL DEFAULT '{}'
        CONSTRAINT ari_days_manual_check CHECK (manual <@ ARRAY[
            'inv_total', 'rate_cents', 'extra_adult_cents', 'min_stay', 'max_stay',
            'closed_to_arrival', 'closed_to_departure', 'stop_sell']),
    ADD CONSTRAINT ari_days_stay_range_check CHECK (max_stay >= min_stay);

-- Like hold_nights, no foreign key to room_types: each hold would KEY SHARE-lock its room
-- type's row, which concurrent holds of one room type turn into multixacts. create_hold
-- checks the room type belongs to the property before it writes.
CREATE TABLE hold_units (
    hold_id       uuid    NOT NULL REFERENCES holds (id),
    unit          integer NOT NULL CONSTRAINT hold_units_unit_check CHECK (unit >= 1),
    room_type_id  bigint  NOT NULL,
    adults        integer NOT NULL CONSTRAINT hold_units_adults_check CHECK (adults >= 1),
    children_ages integer[] NOT NULL DEFAULT '{}',
    total_cents   bigint  NOT NULL CONSTRAINT hold_units_total_cents_check CHECK (total_cents >= 0),
    CONSTRAINT hold_units_pkey PRIMARY KEY (hold_id, unit)
);

CREATE TABLE reservation_units (
    reservation_id uuid    NOT NULL REFERENCES reservations (id),
    unit           integer NOT NULL CONSTRAINT reservation_units_unit_check CHECK (unit >= 1),
    room_type_id   bigint  NOT NULL REFERENCES room_types (id),
    adults         integer NOT NULL CONSTRAINT reservation_units_adults_check CHECK (adults >= 1),
    children_ages  integer[] NOT NULL DEFAULT '{}',
    total_cents    bigint  NOT NULL
        CONSTRAINT reservation_units_total_cents_check CHECK (total_cents >= 0),
    CONSTRAINT reservation_units_pkey PRIMARY KEY (reservation_id, unit)
);

-- Holds before this migration were one party over their rooms: one line per room type
-- and unit, the guests on the first, each unit's share of the price by its nights' rates.
INSERT INTO hold_units (hold_id, unit, room_type_id, adults, children_ages, total_cents)
SELECT r.hold_id, r.unit, r.room_type_id,
       CASE WHEN r.unit = 1 THEN h.guests ELSE 1 END, '{}', r.total_cents
FROM (
    SELECT n.hold_id, n.room_type_id,
           row_number() OVER (PARTITION BY n.hold_id ORDER BY n.room_type_id, q.i) AS unit,
           sum(a.rate_cents) AS total_cents
    FROM hold_nights n
    JOIN ari_days a ON a.room_type_id = n.room_type_id AND a.date = n.date
    CROSS JOIN LATERAL generate_series(1, n.qty) AS q(i)
    GROUP BY n.hold_id, n.room_type_id, q.i
) r JOIN holds h ON h.id = r.hold_id;
INSERT INTO reservation_units (reservation_id, unit, room_type_id, adults, children_ages,
                               total_cents)
SELECT r.id, u.unit, u.room_type_id, u.adults, u.children_ages, u.total_cents
FROM reservations r JOIN hold_units u ON u.hold_id = r.hold_id;

-- Who in a party pays as an adult and what each child's band says, for pricing: its
-- guests, those who count as adults (the adults, and the children older than every band
-- or of unknown age, NULL), and the band percent of each other child, oldest first.
-- Table functions here (party_seats, unit_party, night_cents) are inlined by the planner
-- into the queries that call them.
CREATE FUNCTION party_seats(
    p_adults    integer,
    p_children  integer[],
    p_band_ages integer[],
    p_band_pcts integer[]
) RETURNS TABLE (guests integer, as_adults integer, child_percents integer[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 1
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

-- How a party (as party_seats gives it) sits in a room type: whether it fits (an adult at
-- least, at most max_adults counting as adults, at most max_occupancy in all), and who
-- pays beyond the rate, which covers p_base guests (adults first, then children oldest
-- first): how many pay as adults, and each other extra child's band percent.
CREATE FUNCTION unit_party(
    p_base           integer,
    p_max_adults     integer,
    p_max_occupancy  integer,
    p_adults         integer,
    p_guests         integer,
    p_as_adults      integer,
    p_child_percents integer[]
) RETURNS TABLE (fits boolean, extra_adults integer, child_percents integer[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 1
AS $$
    SELECT p_adults >= 1 AND p_guests <= p_max_occupancy AND p_as_adults <= p_max_adults,
           greatest(p_as_adults - p_base, 0),
           p_child_percents[greatest(p_base - p_as_adults, 0) + 1:]
$$;

-- One unit's price for one night: the rate, plus extra_adult_cents per extra adult, plus
-- each extra child's percent of it rounded half up. Integer cents. A table function, as
-- unit_party.
CREATE FUNCTION night_cents(
    p_rate_cents     bigint,
    p_extra_cents    bigint,
    p_extra_adults   integer,
    p_child_percents integer[]
) RETURNS TABLE (cents bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 1
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

-- The first stay rule a stay of one room type breaks, from its arrival date's row
-- (closed_to_arrival, min_stay, max_stay of a stay of p_nights) and its departure date's
-- (a departure date the calendar does not have: 'unavailable'; closed_to_departure).
-- NULL: the rules allow the stay.
CREATE FUNCTION stay_rule(
    p_nights              integer,
    p_closed_to_arrival   boolean,
    p_min_stay            integer,
    p_max_stay            integer,
    p_departure_found     boolean,
    p_closed_to_departure boolean
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN p_closed_to_arrival THEN 'closed_to_arrival'
    WHEN p_nights < p_min_stay THEN 'min_stay'
    WHEN p_nights > p_max_stay THEN 'max_stay'
    WHEN NOT p_departure_found THEN 'unavailable'
    WHEN p_closed_to_departure THEN 'closed_to_departure'
END;

DROP FUNCTION create_hold(bigint, bigint[], integer[], date, date, integer, integer, text, text,
                          uuid, text);

-- A request's units as rows (unit numbered from 1 in the order given).
CREATE FUNCTION request_units(p_units jsonb)
RETURNS TABLE (unit integer, room_type_id bigint, adults integer, children_ages integer[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT u.ord::integer, u.room_type_id, u.adults, coalesce(u.children_ages, '{}')
    FROM ROWS FROM (jsonb_to_recordset(p_units)
                    AS (room_type_id bigint, adults integer, children_ages integer[]))
         WITH ORDINALITY AS u(room_type_id, adults, children_ages, ord)
$$;

-- Each unit of a request on a property: its room type, whether its party fits, and its
-- price over the stay from the nights as they read now (NULL when the room type is not
-- the property's). A table function, inlined where it is called.
CREATE FUNCTION unit_prices(
    p_units       jsonb,
    p_property_id bigint,
    p_checkin     date,
    p_checkout    date,
    p_band_ages   integer[],
    p_band_pcts   integer[]
) RETURNS TABLE (unit integer, room_type_id bigint, fits boolean, total_cents bigint)
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

-- Claims every night of every unit or none, in the order of 0007's create_hold: one plain
-- read validates and prices the request, the idempotency key is claimed, the hold's rows
-- are written, and the contended nights are locked and claimed last, in (room type,
-- date) order. The claim also says whether a claimed night's rate or extra-adult price
-- differs from the read; only then are the units priced again, from the locked rows, and
-- the hold takes that price. So the lock window grows by a comparison, not a pricing.
-- p_units: [{"room_type_id": 1, "adults": 2, "children_ages": [5, 8]}, ...], one per unit.
-- Refusals (nothing written): invalid_property, too_many_guests (a unit's party does not
-- fit its room type), past_dates, unavailable, and a stay rule by name (min_stay,
-- max_stay, closed_to_arrival, closed_to_departure, stop_sell) with the date that sets it.
CREATE FUNCTION create_hold(
    p_property_id     bigint,
    p_units           jsonb,
    p_checkin         date,
    p_checkout        date,
    p_ttl_seconds     integer,
    p_idempotency_key text,
    p_fingerprint     text,
    p_conversation_id uuid,
    p_correlation_id  text
) RETURNS TABLE (outcome text, hold_id uuid, expires_at timestamptz, total_cents bigint,
                 currency text, outbox_id bigint, refused_on date, refused_bound integer)
LANGUAGE plpgsql
SET lock_timeout = '2s'
SET plan_cache_mode = force_generic_plan
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
