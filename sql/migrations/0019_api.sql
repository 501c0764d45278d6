-- The inn's API (issue 22): keys, and what each key used per minute.
--
-- A key is shown once, at its creation; the table keeps only its HMAC under
-- API_KEY_PEPPER. A key reaches only its own property, with the scope it was given.
CREATE TABLE api_keys (
    id           bigint      GENERATED ALWAYS AS IDENTITY CONSTRAINT api_keys_pkey PRIMARY KEY,
    property_id  bigint      NOT NULL REFERENCES properties (id),
    name         text        NOT NULL,
    scope        text        NOT NULL CONSTRAINT api_keys_scope_check
                                 CHECK (scope IN ('read', 'write')),
    key_hmac     text        NOT NULL CONSTRAINT api_keys_key_hmac_key UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Requests per key per minute, for its rate limit (every instance counts here).
CREATE TABLE api_usage (
    key_id       bigint      NOT NULL REFERENCES api_keys (id),
    window_start timestamptz NOT NULL,
    count        integer     NOT NULL DEFAULT 1,
    CONSTRAINT api_usage_pkey PRIMARY KEY (key_id, window_start)
);
