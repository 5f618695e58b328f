"""Supervisor reports: DESIGN §6's tables as SQL aggregations, in table/csv/json/markdown/html.

`definitions` holds the rules that need no database and `workdays` the working-day calendar
the SQL looks times up in; `performance`, `caseload` and `routing` are the queries, each
returning a `report.Report`; `formats` prints one, `charts` and `pack` make the HTML pack.
Every query takes a connection and the time; nothing here reads the clock.
"""
