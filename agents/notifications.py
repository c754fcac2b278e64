"""E-mails: to agents about their application, to customers to verify their address.

Each is written in its recipient's language (``recipient_language``), whatever
the language of the request or task that owes it.
"""

from django.utils.translation import gettext as _
from django.utils.translation import override

from agents.models import AgentReviewEvent, AgentStatus, User
from config.locale import recipient_language
from outbox.services import mail


def _decision(event: AgentReviewEvent) -> tuple[str, str] | None:
    """The subject and body (with ``%(name)s`` and ``%(reason)s``) in the active language."""
    status = event.to_status
    if event.from_status == AgentStatus.SUSPENDED and status == AgentStatus.APPROVED:
        return (
            _("Your Humanline account is active again"),
            _("Hello %(name)s,\n\nYour suspension has been lifted.\n\nNote: %(reason)s\n"),
        )
    if status == AgentStatus.APPROVED:
        return (
            _("You're approved: welcome to Humanline"),
            _(
                "Hello %(name)s,\n\nYour application has been approved. You can now book "
                "shifts and go online to receive tickets.\n"
            ),
        )
    if status == AgentStatus.REJECTED:
        return (
            _("About your Humanline application"),
            _(
                "Hello %(name)s,\n\nWe're sorry: your application was not approved."
                "\n\nReason: %(reason)s\n"
            ),
        )
    if status == AgentStatus.SUSPENDED:
        return (
            _("Your Humanline account is suspended"),
            _(
                "Hello %(name)s,\n\nYour account has been suspended and you have been taken "
                "offline.\n\nReason: %(reason)s\n"
            ),
        )
    return None


def mail_decision(*, event: AgentReviewEvent) -> None:
    """Owe the applicant an e-mail about a decision (``outbox``), if it is one they hear of."""
    user = event.agent.user
    with override(recipient_language(user)):
        decision = _decision(event)
        if decision is None:
            return
        subject, body = decision
        mail(
            to=user.email,
            subject=subject,
            body=body % {"name": user.first_name or user.name, "reason": event.reason or "-"},
        )


def mail_verification(*, user: User, url: str) -> None:
    """Owe the customer the link that verifies their address."""
    with override(recipient_language(user)):
        mail(
            to=user.email,
            subject=_("Confirm your e-mail address for Humanline"),
            body=_(
                "Hello %(name)s,\n\n"
                "Confirm that this is your address, so that conversations our partners "
                "started with you can be linked to your account:\n\n%(url)s\n\n"
                "If you did not sign up, ignore this e-mail.\n"
            )
            % {"name": user.first_name or user.name, "url": url},
        )
