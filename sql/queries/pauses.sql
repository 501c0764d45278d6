-- paused_providers --
-- The providers whose webhooks are paused (the public role reads it every few seconds).
SELECT provider FROM provider_pauses

-- provider_pause --
-- One provider's pause, if it is paused.
SELECT provider, paused_at, paused_by, reason FROM provider_pauses WHERE provider = $1

-- pause_provider --
-- Pause a provider; a provider already paused keeps its first pause (nothing returned).
INSERT INTO provider_pauses (provider, paused_by, reason) VALUES ($1, $2, $3)
ON CONFLICT ON CONSTRAINT provider_pauses_pkey DO NOTHING
RETURNING provider, paused_at, paused_by, reason

-- resume_provider --
-- Resume a provider: its pause, deleted (nothing returned when it was not paused).
DELETE FROM provider_pauses WHERE provider = $1
RETURNING provider, paused_at, paused_by, reason
