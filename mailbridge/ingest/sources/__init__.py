"""Where inbound mail comes from: an IMAP mailbox or a local Maildir."""
