"""The inn's console: log in with a code sent over WhatsApp, see the day, the calendar,
the bookings, the conversations handed to the staff and the channels, and change them
through the back office's commands, which the worker runs. Served by the public role."""
