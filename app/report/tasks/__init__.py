"""Report tasks, one module per concern: access (who may read, fill, refresh, review), rows (stored rows
and column metadata), view (opening a task), cells (saving gap cells, rejects), submit (required gaps
and row rules over the whole task), write_back (ledger write-back at submit), xlsx (download and
upload), listing (task lists)."""
