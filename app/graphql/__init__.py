"""GraphQL at /graphql: types generated from the catalogue, each root ledger field compiled to one SQL
statement that builds the JSON in PostgreSQL with the access policy inside. See docs/graphql.md."""
