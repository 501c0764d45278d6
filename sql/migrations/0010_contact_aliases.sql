-- One guest, one contact, however the provider addresses them. Recent WhatsApp versions
-- address a guest by a LID (<lid>@lid) and give the phone only on some messages; the LID's
-- hash points at the contact the guest has (their phone's, once a message carried it).
-- depends: 0009_send_attempts
CREATE TABLE contact_aliases (
    -- HMAC of the LID JID (CONTACT_HASH_KEY), as contact_hash is of a phone number.
    alias_hash   text NOT NULL CONSTRAINT contact_aliases_pkey PRIMARY KEY,
    contact_hash text NOT NULL
        CONSTRAINT contact_aliases_contact_hash_fkey REFERENCES contacts (contact_hash),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
