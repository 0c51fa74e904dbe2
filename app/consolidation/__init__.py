"""Layer A of the six-step method: the register of legacy report forms and their consolidation into
ledgers and extensions (docs/push.md, "Form consolidation")."""
