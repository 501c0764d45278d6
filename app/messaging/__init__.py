"""WhatsApp providers: inbound envelopes and outbound sends."""
