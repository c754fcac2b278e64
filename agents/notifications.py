"""E-mails: to agents about their application, to customers to verify their address."""

from django.core.mail import send_mail

from agents.models import AgentReviewEvent, AgentStatus, User

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


def send_decision_email(*, event_id: int) -> None:
    event = AgentReviewEvent.objects.select_related("agent__user").get(pk=event_id)
    status = event.to_status
    if event.from_status == AgentStatus.SUSPENDED and status == AgentStatus.APPROVED:
        subject = "Your Humanline account is active again"
        body = "Hello {name},\n\nYour suspension has been lifted.\n\nNote: {reason}\n"
    elif status in SUBJECTS:
        subject, body = SUBJECTS[status], BODIES[status]
    else:
        return
    user = event.agent.user
    send_mail(
        subject,
        body.format(name=user.first_name or user.name, reason=event.reason or "-"),
        None,
        [user.email],
    )


def send_verification_email(*, user_id: int, url: str) -> None:
    user = User.objects.filter(pk=user_id, email_verified_at__isnull=True).first()
    if user is None:  # verified meanwhile, or gone
        return
    send_mail(
        "Confirm your e-mail address for Humanline",
        f"Hello {user.first_name or user.name},\n\n"
        "Confirm that this is your address, so that conversations our partners started "
        f"with you can be linked to your account:\n\n{url}\n\n"
        "If you did not sign up, ignore this e-mail.\n",
        None,
        [user.email],
    )
