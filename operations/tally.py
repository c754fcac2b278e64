"""All-time totals over a growing table, the same whichever process counts them.

A Prometheus counter must only go up and must read the same from every web
process that may serve a scrape.  Counting the database's facts gives both:
every process reads the same rows.  Counting them all on every scrape would
cost more as the table grows, so each process keeps the totals of the rows
that can no longer change (ids up to ``settled_to``) and on each scrape
counts only the rows after them.

A row is settled once a row with a higher id was created more than
``SETTLE_SECONDS`` ago: by then the transaction that took any lower id has
long committed, so no row can still appear below it.  (The last such row is
found by walking the primary key down from its end: ids follow creation
times, so the walk stops within the last minute's rows.)  A table whose rows
change after insertion (offers: ``pending`` until answered or expired) also
says where its first row that may still change is (``open_from``), and
nothing from there on is settled.  What a scrape returns is therefore always
the count over the whole table at that moment; the settled part only saves
reading it again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

SETTLE_SECONDS = 60.0


class Tally:
    def __init__(
        self,
        rows: Callable[[], QuerySet],
        count: Callable[[QuerySet], dict[str, float]],
        *,
        open_from: Callable[[], int | None] | None = None,
    ):
        """``rows``: the rows counted, of a model with ``created_at``; ``count``: their
        totals by name; ``open_from``: the first id whose row may still change."""
        self.rows, self.count, self.open_from = rows, count, open_from
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget what was settled (a test's rows are rolled back after it)."""
        self.settled: Counter[str] = Counter()
        self.settled_to = 0

    def _settled_bound(self) -> int | None:
        cutoff = timezone.now() - timedelta(seconds=SETTLE_SECONDS)
        table = self.rows().model.objects.order_by("-id")
        bound = table.filter(created_at__lt=cutoff).values_list("id", flat=True).first()
        if bound is not None and self.open_from is not None:
            first_open = self.open_from()
            if first_open is not None:
                bound = min(bound, first_open - 1)
        return bound

    def totals(self) -> dict[str, float]:
        with self.lock:
            bound = self._settled_bound()
            if bound is not None and bound > self.settled_to:
                self.settled.update(
                    self.count(self.rows().filter(id__gt=self.settled_to, id__lte=bound))
                )
                self.settled_to = bound
            totals = Counter(self.settled)
            totals.update(self.count(self.rows().filter(id__gt=self.settled_to)))
            return dict(totals)
