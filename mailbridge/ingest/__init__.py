"""Inbound mail: sources, parsing, classification, and the pipeline that turns mail into cases."""
