-- property_by_phone_number_id --
-- The inn a WhatsApp Business number belongs to.
SELECT id FROM properties WHERE whatsapp_phone_number_id = $1

-- record_message_status --
-- A Graph status webhook for one of our replies, found by the id Graph gave it ($1) or by
-- the biz_opaque_callback_data we sent with it (our id, $4): so a status also proves a send
-- whose answer never reached us, and records it. Statuses only move forward
-- (queued → sent → delivered → read), and failed is final.
UPDATE messages
SET status = $2,
    provider_message_id = coalesce(provider_message_id, $1),
    sent_at = CASE WHEN $2 = 'failed' THEN sent_at ELSE coalesce(sent_at, now()) END,
    lease_until = NULL,
    attempt_started_at = NULL,
    last_error = coalesce($3, last_error),
    updated_at = now()
WHERE direction = 'out' AND (provider_message_id = $1 OR id = $4::uuid)
  AND status IN ('queued', 'sent', 'delivered', 'read')
  AND array_position(ARRAY['queued', 'sent', 'delivered', 'read'], status)
      < coalesce(array_position(ARRAY['queued', 'sent', 'delivered', 'read'], $2), 5)

-- claim_outbound --
-- Lease a queued reply for one send attempt; nothing when it is sent, failed or leased.
UPDATE messages m SET lease_until = now() + make_interval(secs => $2), attempts = m.attempts + 1,
                      updated_at = now()
FROM conversations c, contacts k, properties p
WHERE m.id = $1 AND m.direction = 'out' AND m.status = 'queued'
  AND (m.lease_until IS NULL OR m.lease_until < now())
  AND c.id = m.conversation_id AND k.contact_hash = c.contact_hash AND p.id = c.property_id
RETURNING m.body_encrypted, m.template, m.interactive, k.phone_encrypted,
          p.whatsapp_phone_number_id,
          p.settings -> 'whatsapp' AS whatsapp,
          p.settings -> 'whatsapp' -> 'templates' AS templates, c.language,
          -- WhatsApp's customer-service window: 24 h from the contact's last message.
          coalesce(c.last_inbound_at > now() - interval '24 hours', false) AS window_open,
          -- An earlier attempt whose outcome is unknown began this many seconds ago.
          extract(epoch FROM now() - m.attempt_started_at)::float8 AS uncertain_for

-- outbound_state --
-- Why a reply could not be leased: already settled, or another attempt holds it.
SELECT status, lease_until > now() AS leased FROM messages WHERE id = $1 AND direction = 'out'

-- outbound_attempt --
-- This attempt is about to call the provider: until its outcome is written, it is uncertain.
UPDATE messages SET attempt_started_at = now(), updated_at = now()
WHERE id = $1 AND status = 'queued'

-- outbound_await_proof --
-- An earlier attempt may have gone out: give the lease back, keep the attempt, send nothing.
UPDATE messages SET lease_until = NULL, updated_at = now() WHERE id = $1 AND status = 'queued'

-- outbound_sent --
UPDATE messages SET status = 'sent', sent_at = now(), provider_message_id = $2,
                    lease_until = NULL, attempt_started_at = NULL, last_error = NULL,
                    updated_at = now()
WHERE id = $1 AND status = 'queued'

-- outbound_retry --
-- A retryable failure: give the lease back so the next attempt may send; $3: the provider
-- may have taken the message (a timeout after sending), so the attempt stays uncertain.
UPDATE messages SET lease_until = NULL, last_error = $2, updated_at = now(),
                    attempt_started_at = CASE WHEN $3 THEN attempt_started_at END
WHERE id = $1 AND status = 'queued'

-- outbound_failed --
-- A permanent failure: never sent, never retried.
UPDATE messages SET status = 'failed', lease_until = NULL, attempt_started_at = NULL,
                    last_error = $2, updated_at = now()
WHERE id = $1 AND status = 'queued'

-- outbound_undeliverable --
-- Outside the 24-hour window with no template for it: recorded, never sent or retried.
UPDATE messages SET status = 'undeliverable', lease_until = NULL, attempt_started_at = NULL,
                    last_error = $2, updated_at = now()
WHERE id = $1 AND status = 'queued'

-- property_by_instance --
-- The inn an Evolution instance belongs to, with its sealed webhook secret.
SELECT id, settings -> 'whatsapp' ->> 'webhook_secret_sealed' AS webhook_secret_sealed
FROM properties
WHERE settings -> 'whatsapp' ->> 'provider' = 'evolution'
  AND settings -> 'whatsapp' ->> 'instance' = $1
