"""Outbound mail: rendering, recipients, composition, the outbox and its senders."""
