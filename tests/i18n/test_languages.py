"""Which language and time zone people are served in, and that every string has
its French, Swedish and German translation."""

from datetime import UTC, datetime

import pytest
from django.core import mail
from django.template import Context, Template
from django.utils import translation
from rest_framework.authtoken.models import Token

from agents import services as agent_services
from agents.models import AgentStatus, Role
from config import catalogs
from tests.factories import AgentFactory, UserFactory
from tests.tickets.factories import TicketFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


# --- the catalogs ---------------------------------------------------------------


def test_every_string_in_the_code_has_a_translation_in_french_swedish_and_german():
    # A template or Python string marked for translation that a catalog lacks,
    # leaves empty or marks fuzzy fails here: `make messages`, then translate.
    assert catalogs.problems() == []


def test_a_string_left_untranslated_is_reported():
    # given: the French catalog as it is, with one translation emptied and one fuzzy
    def read(language, domain):
        catalog = catalogs.read_catalog(language, domain)
        if (language, domain) == ("fr", "django"):
            catalog.get("Talk to a person").string = ""
            catalog.get("Open a ticket").flags.add("fuzzy")
        return catalog

    # when / then: both are named, and nothing else
    problems = catalogs.problems(read=read)
    assert len(problems) == 2
    assert "'Talk to a person'" in problems[0] and "has no translation" in problems[0]
    assert "'Open a ticket'" in problems[1] and "is fuzzy" in problems[1]


def test_a_translation_that_breaks_its_placeholders_is_reported():
    def read(language, domain):
        catalog = catalogs.read_catalog(language, domain)
        if (language, domain) == ("sv", "django"):
            catalog.get("Hi %(name)s").string = "Hej %(namn)s"
        return catalog

    problems = catalogs.problems(read=read)
    assert len(problems) == 1 and "'Hi %(name)s'" in problems[0]


def test_template_strings_are_extracted_as_django_looks_them_up():
    found = {m.msgid for m in catalogs.extract_messages("django")}
    assert "Talk to a person" in found  # {% translate %}
    assert "You are helping %(name)s." in found  # {% blocktranslate with %}
    assert ("%(n)s ticket since %(since)s", "%(n)s tickets since %(since)s") in found  # count
    scripts = {m.msgid for m in catalogs.extract_messages("djangojs")}
    assert ("%s minute", "%s minutes") in scripts


# --- which language -------------------------------------------------------------


def test_anyone_is_served_in_their_browsers_language(client):
    response = client.get("/login/", HTTP_ACCEPT_LANGUAGE="sv-SE,sv;q=0.9,en;q=0.5")
    assert response["Content-Language"] == "sv"
    assert '<html lang="sv">' in response.content.decode()
    assert "Logga in" in response.content.decode()


def test_a_language_without_translations_falls_back_to_english(client):
    response = client.get("/login/", HTTP_ACCEPT_LANGUAGE="pt-PT")
    assert response["Content-Language"] == "en"
    assert "Sign in" in response.content.decode()


def test_a_customer_who_chose_a_language_gets_it_whatever_the_browser_says(client):
    sofia = UserFactory(role=Role.CUSTOMER, language="sv")
    client.force_login(sofia)
    page = client.get("/help/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Hjälpcenter" in page
    assert "Centre d'aide" not in page


def test_a_customer_who_never_chose_follows_the_browser(client):
    claire = UserFactory(role=Role.CUSTOMER, language="")
    client.force_login(claire)
    assert "Centre d'aide" in client.get("/help/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Help centre" in client.get("/help/").content.decode()


def test_a_profile_language_without_translations_leaves_the_browser_to_decide(client):
    # Portuguese routes the customer's tickets; the pages have no Portuguese.
    pedro = UserFactory(role=Role.CUSTOMER, language="pt")
    client.force_login(pedro)
    assert "Hilfe-Center" in client.get("/help/", HTTP_ACCEPT_LANGUAGE="de").content.decode()


def test_the_switcher_is_remembered_and_saved_on_the_profile(client):
    # given: a customer who never chose, reading in English
    claire = UserFactory(role=Role.CUSTOMER, language="")
    client.force_login(claire)

    # when: they pick German in the footer (the page adds the browser's time zone)
    response = client.post(
        "/i18n/setlang/",
        {"language": "de", "next": "/help/", "time_zone": "Europe/Berlin"},
    )

    # then: back where they were, in German, now and next time
    assert response.status_code == 302 and response["Location"] == "/help/"
    assert response.cookies["django_language"].value == "de"
    claire.refresh_from_db()
    assert (claire.language, claire.time_zone) == ("de", "Europe/Berlin")
    assert "Hilfe-Center" in client.get("/help/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()


def test_the_switcher_works_signed_out_with_a_cookie_and_ignores_unknown_languages(client):
    client.post("/i18n/setlang/", {"language": "fr", "next": "/login/"})
    assert "Se connecter" in client.get("/login/").content.decode()
    client.post("/i18n/setlang/", {"language": "xx", "next": "/login/"})
    assert "Se connecter" in client.get("/login/").content.decode()


def test_an_agent_chooses_their_language_and_keeps_their_declared_time_zone(client):
    agent = AgentFactory(user__language="en", time_zone="Europe/Lisbon")
    client.force_login(agent.user)
    client.post("/i18n/setlang/", {"language": "fr", "next": "/agent/", "time_zone": "Asia/Tokyo"})
    agent.user.refresh_from_db()
    assert (agent.user.language, agent.user.time_zone) == ("fr", "")
    assert "Tableau des créneaux" in client.get("/agent/shifts/").content.decode()


PAGES = [
    # (path, who, a string of the page as English writes it)
    ("/", None, "A person is always a click away."),
    ("/login/", None, "Sign in"),
    ("/apply/", None, "Become a Humanline agent"),
    ("/apply/status/", "applicant", "My application"),
    ("/help/", "customer", "Help centre"),
    ("/agent/", "agent", "Hi %(name)s"),
    ("/agent/shifts/", "agent", "Shift board"),
    ("/agent/earnings/", "agent", "Earnings"),
]


@pytest.mark.parametrize("language", ["fr", "sv", "de"])
@pytest.mark.parametrize(("path", "who", "english"), PAGES)
def test_every_customer_and_agent_page_answers_in_the_browsers_language(
    client, request, language, path, who, english
):
    if who:
        person = request.getfixturevalue(who)
        user = getattr(person, "user", person)
        user.language = ""
        user.save(update_fields=["language"])
        client.force_login(user)
    with translation.override(language):
        translated = translation.gettext(english)
    assert translated != english, f"{english!r} has no {language} translation"

    response = client.get(path, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 200
    page = response.content.decode()
    assert f'<html lang="{language}">' in page
    assert translated.split("%(")[0] in page


# --- the ticket's language ------------------------------------------------------


def test_the_help_centre_opens_the_ticket_in_the_pages_language(client):
    # given: a customer who never chose, whose browser is Swedish
    sofia = UserFactory(role=Role.CUSTOMER, language="")
    client.force_login(sofia)
    form = client.get("/help/", HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert '<option value="sv" selected>Svenska</option>' in form

    # when: they open a ticket without touching the language
    response = client.post(
        "/help/",
        {"subject": "Kortet nekades", "category": "general", "body": "Två gånger i dag."},
        HTTP_ACCEPT_LANGUAGE="sv",
    )

    # then: it waits for Swedish speakers, and the page says so in Swedish
    ticket = Ticket.objects.get(customer=sofia)
    assert response.status_code == 302 and ticket.language == "sv"
    assert "Ditt ärende är öppnat" in client.get(response["Location"]).content.decode()


def test_the_customer_can_choose_another_language_for_the_ticket(client):
    sofia = UserFactory(role=Role.CUSTOMER, language="sv")
    client.force_login(sofia)
    client.post(
        "/help/",
        {"subject": "Kortti", "category": "general", "body": "Hylätty.", "language": "fi"},
    )
    assert Ticket.objects.get(customer=sofia).language == "fi"


def test_an_api_ticket_still_takes_the_customers_profile_language(api):
    pedro = UserFactory(role=Role.CUSTOMER, language="pt")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=pedro).key}")
    response = api.post(
        "/api/v1/tickets/",
        {"subject": "Cartão", "body": "Recusado."},
        format="json",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert response.status_code == 201, response.content
    assert response.json()["language"] == "pt"


# --- API errors -----------------------------------------------------------------


def test_api_errors_answer_in_the_requests_language_with_stable_codes(api):
    claire = UserFactory(role=Role.CUSTOMER, language="")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=claire).key}")
    ticket = TicketFactory(customer=claire, status="resolved")

    response = api.post(
        f"/api/v1/tickets/{ticket.pk}/messages/",
        {"body": "Bonjour"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="fr",
    )

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conversation_closed"
    assert error["message"] == (
        "La conversation n'est pas ouverte quand le ticket est au statut « résolu »."
    )


def test_api_errors_stay_english_by_default(api):
    claire = UserFactory(role=Role.CUSTOMER, language="")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=claire).key}")
    ticket = TicketFactory(customer=claire, status="resolved")
    response = api.post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "Hi"}, format="json")
    assert response.json()["error"] == {
        "code": "conversation_closed",
        "message": "The conversation is not open while the ticket is resolved.",
        "fields": {"status": ["resolved"]},
    }


def test_a_refused_transition_is_said_in_the_requests_language(api):
    # given: a customer whose ticket is resolved, whose app speaks German
    claire = UserFactory(role=Role.CUSTOMER, language="")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=claire).key}")
    ticket = TicketFactory(customer=claire, status="resolved")

    # when: they try to cancel it
    response = api.post(f"/api/v1/tickets/{ticket.pk}/cancel/", HTTP_ACCEPT_LANGUAGE="de")

    # then: the refusal is in German, its code and fields as ever
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["message"] == (
        "Ein Ticket im Status „gelöst“ kann nicht in den Status „storniert“ wechseln."
    )
    assert error["fields"] == {"status": ["resolved"]}


def test_a_document_refused_after_the_decision_is_said_in_the_applicants_language(api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    agent = AgentFactory(user__language="sv", status=AgentStatus.REJECTED)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=agent.user).key}")
    pdf = SimpleUploadedFile("id.pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\n%%EOF\n")

    response = api.post(
        "/api/v1/agents/me/documents/", {"file": pdf}, format="multipart", HTTP_ACCEPT_LANGUAGE="sv"
    )

    assert response.status_code == 409, response.json()
    assert response.json()["error"]["message"] == (
        "Dokument kan läggas till medan ansökan är öppen, inte när den har status ”avslagen”."
    )


def test_continuing_in_another_language_is_said_in_the_pages_language(client):
    # given: a French-speaking customer whose ticket waits in Maltese
    claire = UserFactory(role=Role.CUSTOMER, language="fr")
    ticket = TicketFactory(customer=claire, language="mt", category="general")
    client.force_login(claire)

    # when: they continue in English, without JavaScript
    response = client.post(f"/help/tickets/{ticket.pk}/language/", {"language": "en"}, follow=True)

    # then: the page says so in French, naming the language as French does
    page = response.content.decode()
    assert "Vous continuez en anglais. Votre place dans la file est conservée." in page


def test_a_rating_without_a_score_is_refused_in_the_pages_language(client):
    sofia = UserFactory(role=Role.CUSTOMER, language="sv")
    ticket = TicketFactory(customer=sofia, status="resolved")
    client.force_login(sofia)

    response = client.post(f"/help/tickets/{ticket.pk}/rate/", {"score": "9"}, follow=True)

    assert "Välj ett betyg från 1 till 5." in response.content.decode()


# --- e-mails --------------------------------------------------------------------


def test_a_decision_is_mailed_in_the_agents_language_whatever_the_staff_reads(
    staff, django_capture_on_commit_callbacks
):
    agent = AgentFactory(user__language="de", status=AgentStatus.IN_REVIEW)
    with translation.override("fr"), django_capture_on_commit_callbacks(execute=True):
        agent_services.agent_reject(actor=staff, agent_id=agent.pk, reason="Dokument unlesbar")
    (sent,) = mail.outbox
    assert sent.subject == "Zu deiner Bewerbung bei Humanline"
    assert "Deine Bewerbung wurde nicht genehmigt" in sent.body
    assert "Grund: Dokument unlesbar" in sent.body


def test_staff_are_told_of_a_switched_off_webhook_endpoint_in_their_language(staff, settings):
    from tickets import services as ticket_services
    from webhooks import services as webhooks
    from webhooks.models import Delivery

    # given: an endpoint with one failed attempt to go, and two staff members
    settings.HUMANLINE = {**settings.HUMANLINE, "WEBHOOK_DISABLE_AFTER": 1}
    agneta = UserFactory(role=Role.STAFF, language="sv", email="agneta@example.org")
    _, key = ticket_services.integration_key_create(actor=staff, integration_name="Acme")
    endpoint = webhooks.endpoint_create(
        actor=staff,
        integration_id=key.integration_id,
        url="http://127.0.0.1:9/refused",  # nothing listens on the discard port
        events=["ticket.status"],
    )
    ticket = TicketFactory(integration=key.integration)
    webhooks.emit(ticket=ticket, type="ticket.status", data={"status": "resolved"})

    # when: the delivery fails, and the endpoint is switched off
    webhooks.delivery_attempt(delivery_id=Delivery.objects.get().pk)

    # then: each staff member is mailed in their own language
    from outbox.models import Mail

    endpoint.refresh_from_db()
    assert not endpoint.active
    swedish = Mail.objects.get(to=agneta.email)
    assert swedish.subject == "Webhooks till Acme har stoppats"
    assert "stängdes av efter 1 misslyckade försök i rad" in swedish.body
    english = Mail.objects.get(to=staff.email)
    assert english.subject == "Webhooks to Acme stopped"


def test_a_password_reset_is_mailed_in_the_recipients_language_whatever_the_page(
    client, django_capture_on_commit_callbacks
):
    UserFactory(role=Role.CUSTOMER, language="de", email="greta@example.org")
    UserFactory(role=Role.CUSTOMER, language="", email="sofia@example.org")

    # The mail is owed through the outbox: written in the request, sent after its commit.
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/password-reset/", {"email": "greta@example.org"}, HTTP_ACCEPT_LANGUAGE="en")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/password-reset/", {"email": "sofia@example.org"}, HTTP_ACCEPT_LANGUAGE="sv")

    greta, sofia = mail.outbox
    assert greta.subject.startswith("Passwort")  # Django's German: "Passwort-Rücksetzung …"
    assert "Passwort" in greta.body
    assert sofia.subject.startswith("Lösenord")  # no profile language: the page's (Swedish)


def test_a_cancelled_shift_is_mailed_in_the_agents_language_and_time_zone(
    staff, django_capture_on_commit_callbacks
):
    from marketplace.services import shifts
    from tests.marketplace.factories import ShiftBookingFactory, ShiftSlotFactory

    # given: a French agent in Paris booked on a slot at 08:00 UTC on a Monday
    agent = AgentFactory(user__language="fr", time_zone="Europe/Paris")
    slot = ShiftSlotFactory(
        starts_at=datetime(2030, 1, 7, 8, 0, tzinfo=UTC),
        ends_at=datetime(2030, 1, 7, 8, 30, tzinfo=UTC),
    )
    ShiftBookingFactory(slot=slot, agent=agent)

    # when: staff reading English cancel it
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        shifts.shift_slot_cancel(actor=staff, slot_id=slot.pk, reason="Peu de demande")

    # then: the mail is in French, its times in Paris (09:00, a Monday: "lundi")
    (sent,) = mail.outbox
    assert sent.subject == "Un créneau que vous aviez réservé a été annulé"
    assert "lundi 7 janvier, 09:00" in sent.body and "09:30 (Europe/Paris)" in sent.body


def test_the_address_check_is_mailed_in_the_customers_language():
    sofia = UserFactory(role=Role.CUSTOMER, language="sv", email_verified_at=None)

    with translation.override("de"):
        agent_services.email_verification_send(user=sofia, link=lambda token: f"/v/{token}/")

    from outbox.models import Mail

    (sent,) = Mail.objects.filter(to=sofia.email)
    assert sent.subject == "Bekräfta din e-postadress för Humanline"


def test_a_recipient_without_a_translated_language_is_mailed_in_english(
    staff, django_capture_on_commit_callbacks
):
    agent = AgentFactory(user__language="pt", status=AgentStatus.IN_REVIEW)
    with translation.override("sv"), django_capture_on_commit_callbacks(execute=True):
        agent_services.agent_approve(actor=staff, agent_id=agent.pk)
    assert mail.outbox[0].subject == "You're approved: welcome to Humanline"


# --- dates, times and money -----------------------------------------------------


def test_times_are_shown_in_the_viewers_time_zone_and_language(client):
    sofia = UserFactory(role=Role.CUSTOMER, language="fr", time_zone="America/Montreal")
    TicketFactory(customer=sofia, created_at=datetime(2026, 2, 15, 14, 5, tzinfo=UTC))
    client.force_login(sofia)
    page = client.get("/help/").content.decode()
    assert "ouvert le 15 Fév 2026 09:05" in page  # 14:05 UTC is 09:05 in Montréal


def test_money_follows_the_pages_language():
    template = Template("{% load humanline_format %}{% money '1234.5' 'EUR' %}")
    shown = {}
    for language in ("en", "fr", "sv", "de"):
        with translation.override(language):
            shown[language] = template.render(Context()).replace("\u202f", " ").replace("\xa0", " ")
    assert shown == {
        "en": "€1,234.50",
        "fr": "1 234,50 €",
        "sv": "1 234,50 €",
        "de": "1.234,50 €",
    }


def test_the_scripts_catalog_speaks_the_pages_language(client):
    script = client.get("/i18n/js/", HTTP_ACCEPT_LANGUAGE="sv").content.decode()
    assert "har anslutit till samtalet" in script
