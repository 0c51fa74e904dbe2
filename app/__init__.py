"""Onetable (一表通): standardised master ledgers shared under field-level grants."""
