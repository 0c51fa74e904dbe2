"""The shared query vocabulary: building blocks the REST listing, the GraphQL compiler and the report
compiler build their own statements from. Not one builder: each keeps its output shape.

What lives where:
- `fields`: BASE_FIELDS (id, region_code, created_at, updated_at typed like catalogue fields),
  `field_of(policy, code)`, and `filter_field` / `sort_field`, which ask the policy (check_filter /
  check_sort) before handing out a column.
- `operators`: the one operator table (eq ne gt gte lt lte in prefix is_null -> SQL), `operand` /
  `value` (coercion against the catalogue, LIKE escaping for prefix), `filter_clause` (policy + operand
  + SQL, raising 422 query.invalid) for REST and GraphQL, and `condition(col, field, op, value, where,
  catalog, codes=TEMPLATE) -> clause | list[FieldError]` for callers that collect errors, such as the
  report compiler (`codes` picks the error codes: QUERY gives filter.*, TEMPLATE template.value).
- `keyset`: SortKey, `sort_keys` (through check_sort, `id` as tie-break), `order_by` (NULLS LAST), the
  cursor format (`encode_cursor` in Python, `cursor_sql` in SQL, `decode_cursor` checking every value:
  400 query.cursor_invalid) and `keyset_clause` / `keyset_after` (rows after a cursor, row form where
  it is an index range).
- `paths`: template paths through relations, extensions and link attributes (report compiler, REST
  related records).
- `formulas`: `evaluation_order`, the one dependency order of formula and ratio columns.
- `problems`: `Refused`, the 422 query.invalid problem, and `query_problem`.
- `sources`: the FROM items outside app/access may use — `ledger_table(policy)` (pair it with the
  policy's scope_clause), `link_table(relation)`, `history_table()`.

Every field named by a caller goes through the reader's LedgerPolicy (app/access/policy.py); nothing
here reads a ledger table except through the policy it is given. tests/test_ledger_table_reads.py keeps
direct ledger-table reads inside app/access and app/query.
"""
