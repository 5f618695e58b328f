"""History: cases from the old CRM in (`import cases`), and every case out (`export cases`).

`csvformat` is the file format both directions share, `rows` checks a file row by row (pure),
`importer` checks it against the store and writes it in one transaction, `exporter` streams
cases back out in the same columns.
"""
