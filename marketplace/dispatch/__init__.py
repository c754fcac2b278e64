"""Dispatch: offer each waiting ticket to the best available agent.

- ``rules``: who may be offered a ticket and in which order (pure functions).
- ``matching``: one ticket at a time, or a batch solved as an assignment.
- ``services``: the transactions (offer, accept, decline, expire, withdraw).
"""
