"""Writes for the marketplace, one module per concern: shifts, dispatch, escalation, pricing,
the ledger and payroll."""
