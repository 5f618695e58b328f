"""The store: tables, engine set-up and migrations."""
