"""Writes for the marketplace, one module per concern: ``shifts`` (issue 4), dispatch next."""
