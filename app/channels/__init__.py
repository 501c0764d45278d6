"""Channel sync with Airbnb, Booking.com and any calendar speaking iCalendar: our feed of
each room type's unavailable nights (export), and theirs applied as blocks (import)."""
