-- A reply's tap-to-choose form on Meta, inside the 24-hour window: an interactive list
-- (the quote's options) or reply buttons (yes / other dates, cancel the hold), as Graph's
-- "action" with its "type". Room names, prices and our own ids only: the text the guest
-- reads stays encrypted in body_encrypted. NULL: a plain text (Evolution, or a guest's
-- window closed: the template, as before).
ALTER TABLE messages ADD COLUMN interactive jsonb;
