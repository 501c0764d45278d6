-- Providers whose webhooks are paused (ops pause): their deliveries are answered 503 with
-- Retry-After and the provider keeps them until ops resume deletes the row. A pause is an
-- incident's containment; one left behind loses events once the provider stops retrying
-- (Stripe retries for 3 days).
-- Run: psql "$DATABASE_URL" -f docs/operations/sql/paused_providers.sql
--  or: python -m app ops status   (its paused-providers line)
SELECT provider, paused_at, paused_by, reason, now() - paused_at AS paused_for
FROM provider_pauses
ORDER BY provider;
