"""Catalogue admission (数据项准入): departments propose fields or thematic extensions, the platform
admin approves, and the service applies them online (docs/catalogue.md)."""
