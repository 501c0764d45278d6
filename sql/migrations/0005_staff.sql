-- The inn's staff WhatsApp numbers: notified of reservations, payments needing review and
-- guests asking for a person; their "#bot" hands a conversation back to the bot. The
-- number itself is stored once, encrypted, in contacts.
-- depends: 0004_whatsapp
CREATE TABLE staff_numbers (
    property_id  bigint NOT NULL CONSTRAINT staff_numbers_property_id_fkey REFERENCES properties (id),
    contact_hash text NOT NULL CONSTRAINT staff_numbers_contact_hash_fkey REFERENCES contacts (contact_hash),
    CONSTRAINT staff_numbers_pkey PRIMARY KEY (property_id, contact_hash)
);
