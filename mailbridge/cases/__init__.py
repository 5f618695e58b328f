"""Cases: references, matching, routing, the working-day calendar and state changes."""
