"""Supervisor reports: DESIGN §6's tables as SQL aggregations, in table/csv/json/markdown/html.

`definitions` holds the rules that need no database, `workdays` the working-day calendar the
SQL joins to, `performance`, `caseload` and `routing` the queries, `formats` and `pack` the
output. Every query takes a connection and the time; nothing here reads the clock.
"""
