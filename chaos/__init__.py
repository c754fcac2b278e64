"""The chaos suite: the production-like stack under load while its processes die.

``make chaos`` runs ``python -m chaos`` (the full run); ``tests/test_chaos_short.py``
runs a short one in ``make test``.  See docs/architecture.md, "The chaos suite".
"""
