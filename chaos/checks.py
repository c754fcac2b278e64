"""The invariants, read from PostgreSQL once the load has stopped and the sweeper's grace passed.

Each check is one query over the whole run's rows and gives a count that must
be zero (or a pair of figures that must agree); the table prints them all.
Nothing here trusts what a client was told: only the facts in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass
class Check:
    name: str
    figure: str  # what was found, for the table
    ok: bool
    detail: str = ""


def _one(cursor, sql: str, params=None):
    cursor.execute(sql, params or [])
    return cursor.fetchone()


def run_checks(*, tolerance_seconds: float) -> tuple[list[Check], dict[str, int]]:
    """Every invariant, and the tickets by status.

    ``tolerance_seconds``: how long past its expiry an offer may still be
    pending before it counts as stuck (the sweep runs every second; allow for
    a pass in flight).
    """
    from django.db import connection

    checks: list[Check] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM tickets_ticket GROUP BY status ORDER BY 1")
        by_status = dict(cursor.fetchall())

        # Every ticket is assigned, resolved or waiting; an offered one has a live offer.
        (stuck,) = _one(
            cursor,
            """
            SELECT count(*) FROM tickets_ticket t
            WHERE t.status = 'offered' AND NOT EXISTS (
                SELECT 1 FROM marketplace_offer o
                WHERE o.ticket_id = t.id AND o.status = 'pending'
                  AND o.expires_at > now() - make_interval(secs => %s))
            """,
            [tolerance_seconds],
        )
        (overdue,) = _one(
            cursor,
            "SELECT count(*) FROM marketplace_offer WHERE status = 'pending'"
            " AND expires_at < now() - make_interval(secs => %s)",
            [tolerance_seconds],
        )
        # Cancelled or closed would mean something the load never does happened.
        unexpected = sum(
            n
            for s, n in by_status.items()
            if s not in ("queued", "offered", "assigned", "resolved")
        )
        checks.append(
            Check(
                "tickets assigned, resolved or queued",
                f"{sum(by_status.values())} tickets, {unexpected} otherwise",
                unexpected == 0,
            )
        )
        checks.append(Check("stuck in offered past expiry", str(stuck), stuck == 0))
        checks.append(Check("pending offers past expiry", str(overdue), overdue == 0))

        # One assignee per ticket: each status change starts where the one before ended
        # (a second assignment would start from `assigned`), and each assignment is
        # one accepted offer.
        (breaks,) = _one(
            cursor,
            """
            SELECT count(*) FROM (
                SELECT from_status, lag(to_status) OVER (
                    PARTITION BY ticket_id ORDER BY created_at, id) AS before
                FROM tickets_ticketevent WHERE kind = 'status') chain
            WHERE before IS NOT NULL AND from_status IS DISTINCT FROM before
            """,
        )
        (two_accepted,) = _one(
            cursor,
            """
            SELECT count(*) FROM (
                SELECT t.id FROM tickets_ticket t
                WHERE (SELECT count(*) FROM marketplace_offer o
                       WHERE o.ticket_id = t.id AND o.status = 'accepted')
                   <> (SELECT count(*) FROM tickets_ticketevent e
                       WHERE e.ticket_id = t.id AND e.kind = 'status'
                         AND e.to_status = 'assigned')) mismatch
            """,
        )
        (no_assignee,) = _one(
            cursor,
            "SELECT count(*) FROM tickets_ticket WHERE status = 'assigned'"
            " AND assigned_agent_id IS NULL",
        )
        checks.append(
            Check(
                "tickets with two assignees",
                f"{breaks} broken chains, {two_accepted} offer/assignment mismatches",
                breaks == 0 and two_accepted == 0 and no_assignee == 0,
            )
        )

        # No agent above capacity, and the seat count agrees with the tickets held.
        (over,) = _one(cursor, "SELECT count(*) FROM agents_agent WHERE active_tickets > capacity")
        (drift,) = _one(
            cursor,
            """
            SELECT count(*) FROM agents_agent a
            WHERE a.active_tickets <> (SELECT count(*) FROM tickets_ticket t
                                       WHERE t.assigned_agent_id = a.id AND t.status = 'assigned')
            """,
        )
        checks.append(
            Check(
                "agents over capacity",
                f"{over} over, {drift} with a seat count off",
                over == 0 and drift == 0,
            )
        )

        # Exactly one task pay per assignment that was resolved, none for the others.
        (assignments,) = _one(
            cursor,
            "SELECT count(*) FROM tickets_ticketevent WHERE kind = 'status'"
            " AND to_status = 'assigned'",
        )
        (twice,) = _one(
            cursor,
            "SELECT count(*) FROM (SELECT assignment_id FROM marketplace_ledgerentry"
            " WHERE kind = 'task' GROUP BY assignment_id HAVING count(*) > 1) d",
        )
        (unpaid,) = _one(
            cursor,
            """
            SELECT count(*) FROM tickets_ticketevent r
            WHERE r.kind = 'status' AND r.to_status = 'resolved' AND NOT EXISTS (
                SELECT 1 FROM marketplace_ledgerentry l
                WHERE l.kind = 'task' AND l.ticket_id = r.ticket_id
                  AND l.assignment_id = (
                      SELECT a.id FROM tickets_ticketevent a
                      WHERE a.ticket_id = r.ticket_id AND a.kind = 'status'
                        AND a.to_status = 'assigned' AND (a.created_at, a.id) < (r.created_at, r.id)
                      ORDER BY a.created_at DESC, a.id DESC LIMIT 1))
            """,
        )
        (paid_unresolved,) = _one(
            cursor,
            """
            SELECT count(*) FROM marketplace_ledgerentry l
            WHERE l.kind = 'task' AND NOT EXISTS (
                SELECT 1 FROM tickets_ticketevent r
                WHERE r.ticket_id = l.ticket_id AND r.kind = 'status'
                  AND r.to_status = 'resolved' AND r.created_at >= (
                      SELECT a.created_at FROM tickets_ticketevent a WHERE a.id = l.assignment_id))
            """,
        )
        (tasks, resolves) = _one(
            cursor,
            "SELECT (SELECT count(*) FROM marketplace_ledgerentry WHERE kind = 'task'),"
            " (SELECT count(*) FROM tickets_ticketevent WHERE kind = 'status'"
            "  AND to_status = 'resolved')",
        )
        checks.append(
            Check(
                "one task pay per resolved assignment",
                f"{tasks} task pays, {resolves} resolves of {assignments} assignments",
                twice == 0 and unpaid == 0 and paid_unresolved == 0 and tasks == resolves,
                f"{twice} paid twice, {unpaid} unpaid, {paid_unresolved} paid unresolved",
            )
        )

        # The ledger sums: each task pay is its offer's locked price; each closed
        # period's snapshot is what it holds.
        (ledger_sum, offer_sum, mispriced) = _one(
            cursor,
            """
            SELECT coalesce(sum(l.amount), 0), coalesce(sum(o.amount), 0),
                   count(*) FILTER (WHERE o.id IS NULL OR o.amount <> l.amount
                                    OR o.status <> 'accepted' OR o.agent_id <> l.agent_id)
            FROM marketplace_ledgerentry l LEFT JOIN marketplace_offer o ON o.id = l.offer_id
            WHERE l.kind = 'task'
            """,
        )
        cursor.execute(
            """
            SELECT p.id, p.entry_count, p.totals,
                   (SELECT count(*) FROM marketplace_ledgerentry l WHERE l.period_id = p.id),
                   (SELECT coalesce(json_object_agg(currency, total), '{}'::json) FROM (
                        SELECT currency, sum(amount)::text AS total FROM marketplace_ledgerentry
                        WHERE period_id = p.id GROUP BY currency) s)
            FROM marketplace_payperiod p WHERE p.status = 'closed'
            """
        )
        closed = cursor.fetchall()
        snapshot_off = sum(
            1
            for _, count, totals, actual, sums in closed
            if count != actual
            or {c: Decimal(v) for c, v in _as_dict(totals).items()}
            != {c: Decimal(v) for c, v in (_as_dict(sums)).items()}
        )
        checks.append(
            Check(
                "ledger sums match",
                f"tasks {ledger_sum} = offers {offer_sum}; {len(closed)} closed period(s)",
                ledger_sum == offer_sum and mispriced == 0 and snapshot_off == 0,
                f"{mispriced} mispriced entries, {snapshot_off} snapshots off",
            )
        )

        # One ticket per idempotency key, however often it was retried.
        (duplicates,) = _one(
            cursor,
            "SELECT count(*) FROM (SELECT customer_id, subject FROM tickets_ticket"
            " WHERE subject LIKE 'Chaos %%' GROUP BY customer_id, subject"
            " HAVING count(*) > 1) d",
        )
        checks.append(
            Check("duplicate tickets per idempotency key", str(duplicates), duplicates == 0)
        )
    return checks, by_status


def _as_dict(value) -> dict:
    import json

    if isinstance(value, str):
        return json.loads(value)
    return value or {}


def period_closed(period_id: int) -> bool:
    from marketplace.models import PayPeriod

    return PayPeriod.objects.filter(pk=period_id, status="closed").exists()
