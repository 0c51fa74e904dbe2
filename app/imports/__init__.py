"""Import of township stock data (legacy Excel/CSV): reading, header mapping, cell conversion
(`reading`, `mapping`, `convert`, `sample`); jobs, dry run and commit build on top of these."""
