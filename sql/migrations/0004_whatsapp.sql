-- WhatsApp conversations: every message in and out, and the delivery state of replies.
-- depends: 0003_reprocess

-- One row per message of a conversation. The text is the guest's words or our reply to
-- them, so it is stored only encrypted (AES-GCM under PII_KEY, purpose 'message').
CREATE TABLE messages (
    id                  uuid NOT NULL DEFAULT gen_random_uuid() CONSTRAINT messages_pkey PRIMARY KEY,
    conversation_id     uuid NOT NULL CONSTRAINT messages_conversation_id_fkey REFERENCES conversations (id),
    -- Order of writing: a turn writes the guest's message, then its replies, in one
    -- transaction (so with one created_at); the lease serializes a conversation's turns.
    seq                 bigint GENERATED ALWAYS AS IDENTITY,
    direction           text NOT NULL CONSTRAINT messages_direction_check CHECK (direction IN ('in', 'out')),
    body_encrypted      bytea NOT NULL,
    -- Inbound: the id Meta sent. Outbound: the id Graph answered with once sent.
    provider_message_id text,
    -- What wrote an outbound reply, so a replayed task writes it once:
    -- '<inbound message id>:<n>' or 'outbox:<outbox event id>'.
    dedupe_key          text CONSTRAINT messages_dedupe_key_key UNIQUE,
    -- Inbound: received. Outbound: queued → sent → delivered → read, or failed
    -- (permanently: never retried).
    status              text NOT NULL CONSTRAINT messages_status_check CHECK (
        status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed')),
    -- The send task's lease: while it runs no other attempt sends this message.
    lease_until         timestamptz,
    attempts            integer NOT NULL DEFAULT 0,
    sent_at             timestamptz,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- Failed may come before sending (Graph refused it) or after (delivery failed).
    CONSTRAINT messages_sent_check CHECK (
        status = 'failed' OR (status IN ('sent', 'delivered', 'read')) = (sent_at IS NOT NULL)),
    CONSTRAINT messages_direction_status_check CHECK ((direction = 'in') = (status = 'received'))
);
CREATE INDEX messages_conversation_id_seq_idx ON messages (conversation_id, seq);
-- Status webhooks find the outbound message by the id Graph gave it.
CREATE UNIQUE INDEX messages_outbound_provider_message_id_key
    ON messages (provider_message_id) WHERE direction = 'out' AND provider_message_id IS NOT NULL;
CREATE INDEX conversations_contact_hash_idx ON conversations (contact_hash);

-- One task at a time works on a conversation: it takes this lease, and a concurrent task
-- for the same conversation answers 503 so Cloud Tasks retries it after the first is done.
-- A lease, not a row lock, because the work spans a Stripe call and several transactions.
ALTER TABLE conversations ADD COLUMN lease_until timestamptz;
