"""mailbridge: Members' Enquiries by email."""

__version__ = "0.1.0"
