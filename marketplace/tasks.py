"""Thin Celery tasks: fetch by id, call one function."""

from celery import shared_task


@shared_task(ignore_result=True)
def settle_shift_attendance() -> None:
    from marketplace.services.shifts import shift_attendance_settle

    shift_attendance_settle()


@shared_task(ignore_result=True)
def dispatch() -> None:
    from marketplace.services.dispatch import dispatch_single_flight

    dispatch_single_flight()


@shared_task(ignore_result=True)
def dispatch_sweep() -> None:
    from marketplace.services.dispatch import sweep

    sweep()


@shared_task(ignore_result=True)
def expire_offers() -> None:
    from marketplace.services.dispatch import offers_expire_overdue

    offers_expire_overdue()


@shared_task(ignore_result=True)
def withdraw_offers(agent_id: int, reason: str) -> None:
    from marketplace.services.dispatch import offers_withdraw_for_agent

    offers_withdraw_for_agent(agent_id=agent_id, reason=reason)


@shared_task(ignore_result=True)
def withdraw_ticket_offers(ticket_id: int) -> None:
    from marketplace.services.dispatch import offers_withdraw_for_ticket

    offers_withdraw_for_ticket(ticket_id=ticket_id, reason="ticket_cancelled")


@shared_task(ignore_result=True)
def ensure_pay_period() -> None:
    """Keep this week's pay period in place, so that staff always see it listed."""
    from django.utils import timezone

    from marketplace.services.ledger import period_get_or_create

    period_get_or_create(timezone.now())


@shared_task(ignore_result=True)
def run_payroll_job(job_id: int) -> None:
    from marketplace.services.payroll_jobs import payroll_job_run

    payroll_job_run(job_id=job_id)


@shared_task(ignore_result=True)
def requeue_payroll_jobs() -> None:
    from marketplace.services.payroll_jobs import payroll_jobs_requeue

    payroll_jobs_requeue()
