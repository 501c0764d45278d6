-- Core schema: inventory, holds, payments, reservations, receipts, outbox, contacts.
-- Every constraint is named: app code maps violations to domain errors by name.

CREATE TABLE properties (
    id                       bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT properties_pkey PRIMARY KEY,
    code                     text NOT NULL CONSTRAINT properties_code_key UNIQUE,
    name                     text NOT NULL,
    timezone                 text NOT NULL,
    currency                 text NOT NULL CONSTRAINT properties_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    whatsapp_phone_number_id text CONSTRAINT properties_whatsapp_phone_number_id_key UNIQUE,
    settings                 jsonb NOT NULL DEFAULT '{}',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE room_types (
    id            bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT room_types_pkey PRIMARY KEY,
    property_id   bigint NOT NULL CONSTRAINT room_types_property_id_fkey REFERENCES properties (id),
    code          text NOT NULL,
    name          text NOT NULL,
    max_occupancy integer NOT NULL CONSTRAINT room_types_max_occupancy_check CHECK (max_occupancy > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT room_types_property_id_code_key UNIQUE (property_id, code),
    -- Target of ari_days' composite key: a day always belongs to its room type's property.
    CONSTRAINT room_types_id_property_id_key UNIQUE (id, property_id)
);

-- One row per room type and night. The CHECK is the last guard against overbooking;
-- the critical transactions never rely on it for normal flow.
CREATE TABLE ari_days (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT ari_days_pkey PRIMARY KEY,
    property_id  bigint NOT NULL,
    room_type_id bigint NOT NULL,
    date         date NOT NULL,
    inv_total    integer NOT NULL CONSTRAINT ari_days_inv_total_check CHECK (inv_total >= 0),
    inv_held     integer NOT NULL DEFAULT 0,
    inv_booked   integer NOT NULL DEFAULT 0,
    rate_cents   bigint NOT NULL CONSTRAINT ari_days_rate_cents_check CHECK (rate_cents >= 0),
    stop_sell    boolean NOT NULL DEFAULT false,
    CONSTRAINT ari_days_inventory_check
        CHECK (inv_held >= 0 AND inv_booked >= 0 AND inv_held + inv_booked <= inv_total),
    CONSTRAINT ari_days_room_type_fkey FOREIGN KEY (room_type_id, property_id)
        REFERENCES room_types (id, property_id),
    -- Also the index the ordered lock (room type, then date) walks.
    CONSTRAINT ari_days_room_type_id_date_key UNIQUE (room_type_id, date)
);
CREATE INDEX ari_days_property_id_date_idx ON ari_days (property_id, date);

CREATE TABLE contacts (
    id              uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT contacts_pkey PRIMARY KEY,
    -- HMAC of the phone number: the only identity that appears in logs and events.
    contact_hash    text NOT NULL CONSTRAINT contacts_contact_hash_key UNIQUE,
    phone_encrypted bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conversations (
    id              uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT conversations_pkey PRIMARY KEY,
    property_id     bigint NOT NULL CONSTRAINT conversations_property_id_fkey REFERENCES properties (id),
    contact_hash    text NOT NULL CONSTRAINT conversations_contact_hash_fkey REFERENCES contacts (contact_hash),
    state           text NOT NULL DEFAULT 'new',
    language        text,
    context         jsonb NOT NULL DEFAULT '{}',
    last_inbound_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_property_id_contact_hash_key UNIQUE (property_id, contact_hash)
);

CREATE TABLE holds (
    id                     uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT holds_pkey PRIMARY KEY,
    property_id            bigint NOT NULL CONSTRAINT holds_property_id_fkey REFERENCES properties (id),
    status                 text NOT NULL DEFAULT 'active'
        CONSTRAINT holds_status_check CHECK (status IN ('active', 'expired', 'cancelled', 'converted')),
    checkin                date NOT NULL,
    checkout               date NOT NULL,
    guests                 integer NOT NULL CONSTRAINT holds_guests_check CHECK (guests > 0),
    total_cents            bigint NOT NULL CONSTRAINT holds_total_cents_check CHECK (total_cents >= 0),
    currency               text NOT NULL,
    expires_at             timestamptz NOT NULL,
    create_idempotency_key text NOT NULL,
    -- Hash of the create request: the same key with a different request is a conflict.
    request_fingerprint    text NOT NULL,
    conversation_id        uuid CONSTRAINT holds_conversation_id_fkey REFERENCES conversations (id),
    cancel_reason          text,
    correlation_id         text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    closed_at              timestamptz,
    CONSTRAINT holds_stay_check CHECK (checkout > checkin),
    CONSTRAINT holds_closed_at_check CHECK ((status = 'active') = (closed_at IS NULL)),
    CONSTRAINT holds_property_id_create_idempotency_key_key UNIQUE (property_id, create_idempotency_key)
);
-- The sweep's scan: only active holds, oldest expiry first.
CREATE INDEX holds_active_expires_at_idx ON holds (expires_at) WHERE status = 'active';
CREATE INDEX holds_conversation_id_idx ON holds (conversation_id) WHERE conversation_id IS NOT NULL;

-- The exact nights a hold owns; reservations book these same rows.
-- Keyed by (hold, room type, date): one row per night owned, and no other index, since
-- every read goes through the hold (each index is paid on every claimed night).
CREATE TABLE hold_nights (
    hold_id      uuid NOT NULL CONSTRAINT hold_nights_hold_id_fkey REFERENCES holds (id),
    room_type_id bigint NOT NULL,
    date         date NOT NULL,
    qty          integer NOT NULL CONSTRAINT hold_nights_qty_check CHECK (qty > 0),
    -- No foreign key to ari_days on purpose: its KEY SHARE lock on the hot night would
    -- turn every concurrent claim into a multixact. create_hold only writes nights it
    -- has just claimed, and ari_days rows are never deleted.
    CONSTRAINT hold_nights_pkey PRIMARY KEY (hold_id, room_type_id, date)
);

CREATE TABLE payments (
    id                 uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT payments_pkey PRIMARY KEY,
    provider           text NOT NULL CONSTRAINT payments_provider_check CHECK (provider IN ('stripe')),
    -- The Checkout Session id.
    provider_object_id text NOT NULL,
    payment_intent     text,
    hold_id            uuid NOT NULL CONSTRAINT payments_hold_id_fkey REFERENCES holds (id),
    status             text NOT NULL DEFAULT 'created'
        CONSTRAINT payments_status_check
        CHECK (status IN ('created', 'pending', 'succeeded', 'failed', 'needs_refund', 'refunded')),
    amount_cents       bigint CONSTRAINT payments_amount_cents_check CHECK (amount_cents >= 0),
    currency           text,
    refund_id          text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_provider_provider_object_id_key UNIQUE (provider, provider_object_id)
);
CREATE INDEX payments_hold_id_idx ON payments (hold_id);
CREATE INDEX payments_needs_refund_idx ON payments (created_at) WHERE status = 'needs_refund';

CREATE TABLE reservations (
    id          uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT reservations_pkey PRIMARY KEY,
    -- One reservation per hold, ever.
    hold_id     uuid NOT NULL CONSTRAINT reservations_hold_id_key UNIQUE
        CONSTRAINT reservations_hold_id_fkey REFERENCES holds (id),
    payment_id  uuid NOT NULL CONSTRAINT reservations_payment_id_fkey REFERENCES payments (id),
    property_id bigint NOT NULL CONSTRAINT reservations_property_id_fkey REFERENCES properties (id),
    code        text NOT NULL CONSTRAINT reservations_code_key UNIQUE,
    status      text NOT NULL DEFAULT 'confirmed'
        CONSTRAINT reservations_status_check CHECK (status IN ('confirmed', 'cancelled')),
    checkin     date NOT NULL,
    checkout    date NOT NULL,
    guests      integer NOT NULL,
    total_cents bigint NOT NULL,
    currency    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reservations_stay_check CHECK (checkout > checkin)
);

-- Durable receipt of every external event, and its dedupe.
CREATE TABLE processed_events (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT processed_events_pkey PRIMARY KEY,
    source       text NOT NULL CONSTRAINT processed_events_source_check CHECK (source IN ('stripe', 'whatsapp')),
    -- The provider's own id (Stripe evt_…, WhatsApp message id).
    external_id  text NOT NULL,
    event_type   text NOT NULL,
    -- PII-free fields the worker needs; never the raw payload.
    details      jsonb NOT NULL DEFAULT '{}',
    task_name    text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    enqueued_at  timestamptz,
    processed_at timestamptz,
    outcome      text,
    CONSTRAINT processed_events_source_external_id_key UNIQUE (source, external_id)
);
CREATE INDEX processed_events_unfinished_idx ON processed_events (received_at)
    WHERE processed_at IS NULL;

CREATE TABLE idempotency_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT idempotency_keys_pkey PRIMARY KEY,
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    response    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_scope_key_key UNIQUE (scope, key)
);

-- Facts written in the same transaction as the state change. The event is immutable
-- and PII-free; the delivery columns track getting it to its task.
CREATE TABLE outbox_events (
    id             bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT outbox_events_pkey PRIMARY KEY,
    event_type     text NOT NULL,
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    payload        jsonb NOT NULL DEFAULT '{}',
    correlation_id text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    enqueued_at    timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    lease_until    timestamptz,
    sent_at        timestamptz,
    last_error     text
);
CREATE INDEX outbox_events_unenqueued_idx ON outbox_events (id) WHERE enqueued_at IS NULL;
CREATE INDEX outbox_events_aggregate_idx ON outbox_events (aggregate_type, aggregate_id);
