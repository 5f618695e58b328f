"""The working-day clock: what is due for each case, and the sweeps that send it (DESIGN §5)."""
