-- The inn's console (issue 21): login codes sent over WhatsApp, sessions, attempt counters
-- every instance shares, and the changes it asks the worker to make.
--
-- Nothing here holds a secret in clear: a code is kept as an HMAC under CONSOLE_PEPPER, a
-- session by the SHA-256 of its cookie's random id. A staff member is their contact_hash.

-- One live code per number: asking again replaces it. Valid until expires_at, for at most
-- 5 wrong tries.
CREATE TABLE console_codes (
    contact_hash text        PRIMARY KEY REFERENCES contacts (contact_hash),
    property_id  bigint      NOT NULL REFERENCES properties (id),
    code_hmac    text        NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0 CONSTRAINT console_codes_attempts_check
                                 CHECK (attempts BETWEEN 0 AND 5),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

-- How often a number or a client address asked for a code or tried one, per window.
CREATE TABLE console_attempts (
    subject      text        NOT NULL,  -- "phone:<hash>" or "ip:<hash>"
    window_start timestamptz NOT NULL,
    count        integer     NOT NULL DEFAULT 1,
    CONSTRAINT console_attempts_pkey PRIMARY KEY (subject, window_start)
);

CREATE TABLE console_sessions (
    id_hash      text        PRIMARY KEY,
    contact_hash text        NOT NULL REFERENCES contacts (contact_hash),
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_contact_hash_idx ON console_sessions (contact_hash);

-- A change the console asked for: recorded (once per form token), run by the worker as the
-- back office's command, its result kept for the page that polls it.
CREATE TABLE console_commands (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    property_id  bigint      NOT NULL REFERENCES properties (id),
    contact_hash text        NOT NULL,
    form_token   text        NOT NULL CONSTRAINT console_commands_form_token_key UNIQUE,
    command      text        NOT NULL,
    arguments    jsonb       NOT NULL,
    status       text        NOT NULL DEFAULT 'queued' CONSTRAINT console_commands_status_check
                                 CHECK (status IN ('queued', 'done', 'refused')),
    result       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX console_commands_created_at_idx ON console_commands (created_at);

-- Which inn a member of several was registered with first: the one their login code goes
-- out from and the console opens on.
ALTER TABLE staff_numbers ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
