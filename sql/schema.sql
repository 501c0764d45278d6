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
    CONSTRAINT ari_days_inv_total_check CHECK ((inv_total >= 0)),
    CONSTRAINT ari_days_inventory_check CHECK (((inv_held >= 0) AND (inv_booked >= 0) AND ((inv_held + inv_booked) <= inv_total))),
    CONSTRAINT ari_days_rate_cents_check CHECK ((rate_cents >= 0))
);

ALTER TABLE public.ari_days ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.ari_days_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
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
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.hold_nights (
    id bigint NOT NULL,
    hold_id uuid NOT NULL,
    room_type_id bigint NOT NULL,
    date date NOT NULL,
    qty integer NOT NULL,
    CONSTRAINT hold_nights_qty_check CHECK ((qty > 0))
);

ALTER TABLE public.hold_nights ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.hold_nights_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
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
    last_error text
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
    provider_object_id text NOT NULL,
    payment_intent text,
    hold_id uuid NOT NULL,
    status text DEFAULT 'created'::text NOT NULL,
    amount_cents bigint,
    currency text,
    refund_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT payments_amount_cents_check CHECK ((amount_cents >= 0)),
    CONSTRAINT payments_provider_check CHECK ((provider = 'stripe'::text)),
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
    CONSTRAINT reservations_status_check CHECK ((status = ANY (ARRAY['confirmed'::text, 'cancelled'::text]))),
    CONSTRAINT reservations_stay_check CHECK ((checkout > checkin))
);

CREATE TABLE public.room_types (
    id bigint NOT NULL,
    property_id bigint NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    max_occupancy integer NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
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

ALTER TABLE ONLY public.ari_days
    ADD CONSTRAINT ari_days_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ari_days
    ADD CONSTRAINT ari_days_room_type_id_date_key UNIQUE (room_type_id, date);

ALTER TABLE ONLY public.contacts
    ADD CONSTRAINT contacts_contact_hash_key UNIQUE (contact_hash);

ALTER TABLE ONLY public.contacts
    ADD CONSTRAINT contacts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_property_id_contact_hash_key UNIQUE (property_id, contact_hash);

ALTER TABLE ONLY public.hold_nights
    ADD CONSTRAINT hold_nights_hold_id_room_type_id_date_key UNIQUE (hold_id, room_type_id, date);

ALTER TABLE ONLY public.hold_nights
    ADD CONSTRAINT hold_nights_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_property_id_create_idempotency_key_key UNIQUE (property_id, create_idempotency_key);

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_scope_key_key UNIQUE (scope, key);

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

CREATE INDEX ari_days_property_id_date_idx ON public.ari_days USING btree (property_id, date);

CREATE INDEX hold_nights_room_type_id_date_idx ON public.hold_nights USING btree (room_type_id, date);

CREATE INDEX holds_active_expires_at_idx ON public.holds USING btree (expires_at) WHERE (status = 'active'::text);

CREATE INDEX holds_conversation_id_idx ON public.holds USING btree (conversation_id) WHERE (conversation_id IS NOT NULL);

CREATE INDEX outbox_events_aggregate_idx ON public.outbox_events USING btree (aggregate_type, aggregate_id);

CREATE INDEX outbox_events_unenqueued_idx ON public.outbox_events USING btree (id) WHERE (enqueued_at IS NULL);

CREATE INDEX payments_hold_id_idx ON public.payments USING btree (hold_id);

CREATE INDEX payments_needs_refund_idx ON public.payments USING btree (created_at) WHERE (status = 'needs_refund'::text);

CREATE INDEX processed_events_unfinished_idx ON public.processed_events USING btree (received_at) WHERE (processed_at IS NULL);

ALTER TABLE ONLY public.ari_days
    ADD CONSTRAINT ari_days_room_type_fkey FOREIGN KEY (room_type_id, property_id) REFERENCES public.room_types(id, property_id);

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_contact_hash_fkey FOREIGN KEY (contact_hash) REFERENCES public.contacts(contact_hash);

ALTER TABLE ONLY public.conversations
    ADD CONSTRAINT conversations_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.hold_nights
    ADD CONSTRAINT hold_nights_ari_day_fkey FOREIGN KEY (room_type_id, date) REFERENCES public.ari_days(room_type_id, date);

ALTER TABLE ONLY public.hold_nights
    ADD CONSTRAINT hold_nights_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.holds(id);

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.conversations(id);

ALTER TABLE ONLY public.holds
    ADD CONSTRAINT holds_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.payments
    ADD CONSTRAINT payments_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.holds(id);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES public.holds(id);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_payment_id_fkey FOREIGN KEY (payment_id) REFERENCES public.payments(id);

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);

ALTER TABLE ONLY public.room_types
    ADD CONSTRAINT room_types_property_id_fkey FOREIGN KEY (property_id) REFERENCES public.properties(id);
