-- Containment and repair by hand (issue 18):
--   * provider_pauses: during an incident the operator stops taking a provider's webhooks
--     without a deploy (runbook §7.1, §7.4, SEV0). A row means the provider is paused: the
--     public role answers its webhooks 503 with Retry-After, so the provider keeps its
--     events and delivers them again after `ops resume` deletes the row. A pause concerns
--     every inn, so its audit row names none: audit_log.property_id becomes nullable
--     (NULL: a command of the whole installation);
--   * refunds.reason 'needs_refund': an operator's refund of a payment that booked nothing
--     (paid after expiry, twice, the wrong amount), made by `ops refund` through the same
--     refund row and task as a cancel's.
-- depends: 0013_backoffice
--
-- Expand only: a new table the previous revision never reads (it keeps taking every
-- delivery, as it always did); a NOT NULL dropped and a CHECK widened, which none of its
-- writes can break (the application only ever inserts into audit_log, and sends or
-- records any refund row whatever its reason).

CREATE TABLE provider_pauses (
    provider  text NOT NULL CONSTRAINT provider_pauses_pkey PRIMARY KEY
        CONSTRAINT provider_pauses_provider_check CHECK (provider IN ('stripe', 'whatsapp')),
    paused_at timestamptz NOT NULL DEFAULT now(),
    -- The operator who paused it (`cli:<user>`), as in audit_log.actor.
    paused_by text NOT NULL,
    reason    text
);

ALTER TABLE audit_log ALTER COLUMN property_id DROP NOT NULL;

ALTER TABLE refunds DROP CONSTRAINT refunds_reason_check;
-- NOT VALID then VALIDATE: the check of existing rows does not block writers.
ALTER TABLE refunds ADD CONSTRAINT refunds_reason_check
    CHECK (reason IN ('cancellation', 'stripe_dashboard', 'needs_refund')) NOT VALID;
ALTER TABLE refunds VALIDATE CONSTRAINT refunds_reason_check;
