"""A stateful property test: random resolutions, reopenings, ratings, adjustments, closes, exports.

After every step: the ledger only grows, closed periods never change, no
assignment is paid twice, and (in the export step) each export's totals equal
the ledger's sums to the cent.
"""

import contextlib
import csv
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from django.db.models import Count
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from config.errors import DomainError
from marketplace.models import EntryKind, LedgerEntry, PayPeriod
from marketplace.services import ledger, payroll
from tests.factories import AgentFactory, StaffFactory
from tests.pay.helpers import accept, online, rate, reopen, resolve
from tests.tickets.factories import TicketFactory
from tickets.models import Rating, Ticket, TicketStatus

pytestmark = pytest.mark.django_db

START = datetime(2030, 1, 7, 8, tzinfo=UTC)


class _Rollback(Exception):
    pass


class PayMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each example runs in a transaction rolled back at teardown.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self._clock = time_machine.travel(START, tick=False)
        self.traveller = self._clock.start()
        self.staff = StaffFactory()
        self.agents = [online(AgentFactory()) for _ in range(2)]
        self.seen: dict[int, tuple] = {}
        self.frozen: dict[int, set[int]] = {}

    def teardown(self):
        self._clock.stop()
        self._atomic.__exit__(_Rollback, _Rollback(), None)

    # --- rules ---------------------------------------------------------------------

    @rule(who=st.integers(0, 1), surge=st.sampled_from(["1.00", "1.20", "1.80"]))
    def resolve_new_ticket(self, who, surge):
        agent = self.agents[who]
        ticket = TicketFactory(category="payments")
        accept(ticket, agent, multiplier=surge)
        resolve(ticket, agent)

    @rule(who=st.integers(0, 1), data=st.data())
    def resolve_a_reopened_ticket(self, who, data):
        waiting = list(Ticket.objects.filter(status=TicketStatus.QUEUED).order_by("id"))
        if not waiting:
            return
        ticket = data.draw(st.sampled_from(waiting))
        accept(ticket, self.agents[who], multiplier="1.50")
        resolve(ticket, self.agents[who])

    @rule(data=st.data())
    def reopen_a_ticket(self, data):
        resolved = list(Ticket.objects.filter(status=TicketStatus.RESOLVED).order_by("id"))
        if not resolved:
            return
        ticket = data.draw(st.sampled_from(resolved))
        # Outside the reopen window it is refused, and nothing may change.
        with contextlib.suppress(DomainError):
            reopen(ticket)

    @rule(data=st.data(), score=st.integers(1, 5))
    def rate_a_ticket(self, data, score):
        rateable = list(
            Ticket.objects.filter(status=TicketStatus.RESOLVED, rating__isnull=True).order_by("id")
        )
        if rateable:
            rate(data.draw(st.sampled_from(rateable)), score)

    @rule(
        who=st.integers(0, 1),
        cents=st.integers(-5000, 5000).filter(bool),
        code=st.sampled_from(["EUR", "GBP"]),
    )
    def adjust(self, who, cents, code):
        ledger.adjustment_create(
            actor=self.staff,
            agent_id=self.agents[who].pk,
            amount=Decimal(cents) / 100,
            currency_code=code,
            reason="property test",
        )

    @rule(hours=st.integers(1, 80))
    def time_passes(self, hours):
        self.traveller.shift(timedelta(hours=hours))

    @rule()
    def close_ended_periods(self):
        payroll.pay_periods_close_due()
        for period in PayPeriod.objects.filter(status="closed"):
            ids = set(period.entries.values_list("id", flat=True))
            assert self.frozen.setdefault(period.pk, ids) == ids
            assert period.entry_count == len(ids)

    @rule(data=st.data())
    def export(self, data):
        closed = list(PayPeriod.objects.filter(status="closed").order_by("id"))
        if not closed:
            return
        period = data.draw(st.sampled_from(closed))
        chunks = payroll.payroll_export(period_id=period.pk, actor=self.staff, channel="api")
        body = b"".join(chunks)
        exported = defaultdict(Decimal)
        for row in csv.DictReader(io.StringIO(body.decode())):
            by_kind = sum(Decimal(row[kind]) for kind in payroll.KINDS)
            assert by_kind == Decimal(row["total"])
            exported[(int(row["agent_id"]), row["currency"])] += Decimal(row["total"])
        in_ledger = defaultdict(Decimal)
        for entry in LedgerEntry.objects.filter(period=period):
            in_ledger[(entry.agent_id, entry.currency)] += entry.amount
        assert exported == in_ledger
        assert body == b"".join(payroll.export_chunks(period.pk))

    # --- invariants ------------------------------------------------------------------

    @invariant()
    def the_ledger_only_grows(self):
        now = {
            e.pk: (e.kind, e.amount, e.currency, e.period_id, e.agent_id)
            for e in LedgerEntry.objects.all()
        }
        for pk, values in self.seen.items():
            assert now.get(pk) == values
        self.seen = now

    @invariant()
    def closed_periods_never_change(self):
        for period_id, ids in self.frozen.items():
            assert (
                set(LedgerEntry.objects.filter(period_id=period_id).values_list("id", flat=True))
                == ids
            )

    @invariant()
    def no_assignment_is_paid_twice(self):
        tasks = LedgerEntry.objects.filter(kind=EntryKind.TASK)
        for field in ("assignment", "offer"):
            assert not tasks.values(field).annotate(n=Count("id")).filter(n__gt=1).exists()
        reversals = LedgerEntry.objects.filter(kind=EntryKind.REVERSAL)
        assert not reversals.values("reverses").annotate(n=Count("id")).filter(n__gt=1).exists()
        # Every resolved ticket's current assignment is paid, and no more than once.
        for ticket in Ticket.objects.filter(status=TicketStatus.RESOLVED):
            paid = tasks.filter(ticket=ticket).count() - reversals.filter(ticket=ticket).count()
            assert paid == 1
        assert (
            LedgerEntry.objects.filter(kind=EntryKind.QUALITY_BONUS).count()
            == Rating.objects.filter(score=5).count()
        )


def test_the_ledger_keeps_its_invariants_under_random_operations():
    run_state_machine_as_test(
        PayMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
