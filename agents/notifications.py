"""E-mails: to agents about their application, to customers to verify their address."""

from agents.models import AgentReviewEvent, AgentStatus, User
from outbox.services import mail

SUBJECTS = {
    AgentStatus.APPROVED: "You're approved: welcome to Humanline",
    AgentStatus.REJECTED: "About your Humanline application",
    AgentStatus.SUSPENDED: "Your Humanline account is suspended",
}

BODIES = {
    AgentStatus.APPROVED: (
        "Hello {name},\n\nYour application has been approved. You can now book shifts "
        "and go online to receive tickets.\n"
    ),
    AgentStatus.REJECTED: (
        "Hello {name},\n\nWe're sorry: your application was not approved.\n\nReason: {reason}\n"
    ),
    AgentStatus.SUSPENDED: (
        "Hello {name},\n\nYour account has been suspended and you have been taken offline.\n\n"
        "Reason: {reason}\n"
    ),
}


def mail_decision(*, event: AgentReviewEvent) -> None:
    """Owe the applicant an e-mail about a decision (``outbox``), if it is one they hear of."""
    status = event.to_status
    if event.from_status == AgentStatus.SUSPENDED and status == AgentStatus.APPROVED:
        subject = "Your Humanline account is active again"
        body = "Hello {name},\n\nYour suspension has been lifted.\n\nNote: {reason}\n"
    elif status in SUBJECTS:
        subject, body = SUBJECTS[status], BODIES[status]
    else:
        return
    user = event.agent.user
    mail(
        to=user.email,
        subject=subject,
        body=body.format(name=user.first_name or user.name, reason=event.reason or "-"),
    )


def mail_verification(*, user: User, url: str) -> None:
    """Owe the customer the link that verifies their address."""
    mail(
        to=user.email,
        subject="Confirm your e-mail address for Humanline",
        body=(
            f"Hello {user.first_name or user.name},\n\n"
            "Confirm that this is your address, so that conversations our partners started "
            f"with you can be linked to your account:\n\n{url}\n\n"
            "If you did not sign up, ignore this e-mail.\n"
        ),
    )
