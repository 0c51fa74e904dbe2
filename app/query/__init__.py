"""Building blocks shared by the query builders (REST listing, GraphQL, reports)."""
