"""Reading uploaded workbooks safely: size and shape checks on the ZIP before any parser expands it
(`guard`), the parse itself in a separate, resource-limited process (`worker`, driven by `reader`).
Used by the report task upload; meant for every later import of XLSX files as well."""
