"""Sockets answer in their page's language.

What a socket writes itself (its error frames, the services' refusals it
passes on) follows the person's chosen language, else the handshake's
language cookie or Accept-Language, else English: as a page does.
"""

from datetime import timedelta

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from agents import services
from agents.models import Role
from config.asgi import application
from tests.factories import AgentFactory, UserFactory
from tests.marketplace.factories import offer_to_online

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio,
    pytest.mark.usefixtures("short_lived_db_connections"),
]

ORIGIN = (b"origin", b"http://testserver")


async def _open(user, path: str = "/ws/agent/", headers=()) -> WebsocketCommunicator:
    value, _ = await database_sync_to_async(services.realtime_ticket_issue)(user=user)
    socket = WebsocketCommunicator(
        application, f"{path}?ticket={value}", headers=[ORIGIN, *headers]
    )
    connected, code = await socket.connect()
    assert connected, code
    while not await socket.receive_nothing(timeout=0.3):  # what a socket sends on connect
        await socket.receive_json_from()
    return socket


async def _unknown_type_message(socket: WebsocketCommunicator) -> str:
    await socket.send_json_to({"type": "dance"})
    answer = await socket.receive_json_from()
    assert answer["error"]["code"] == "unknown_type"  # the code stays the same in any language
    return answer["error"]["message"]


async def test_a_socket_answers_in_the_language_its_person_chose():
    agent = await database_sync_to_async(AgentFactory)(user__language="fr")
    socket = await _open(agent.user, headers=[(b"accept-language", b"de")])

    assert await _unknown_type_message(socket) == "Type inconnu."
    await socket.send_json_to(["ping"])
    bad = await socket.receive_json_from()
    assert bad["error"] == {
        "code": "bad_frame",
        "message": 'Envoyez un objet JSON avec un champ "type".',
    }
    await socket.send_json_to({"type": "offer.accept", "offer_id": "seven"})
    assert (await socket.receive_json_from())["error"]["message"] == (
        "Indiquez offer_id sous forme d'entier."
    )
    await socket.disconnect()


async def test_a_refusal_of_the_services_is_passed_on_in_the_sockets_language():
    agent = await database_sync_to_async(AgentFactory)(user__language="sv", languages=["en"])
    offer = await database_sync_to_async(offer_to_online)(agent)
    socket = await _open(agent.user)

    # Past its window, before the sweeper has run: accepting is refused.
    with time_machine.travel(offer.expires_at + timedelta(seconds=1), tick=True):
        await socket.send_json_to({"type": "offer.accept", "offer_id": offer.pk})
        answer = await socket.receive_json_from()

    assert answer["error"] == {
        "code": "offer_expired",
        "message": "Det här erbjudandet har gått ut.",
    }
    await socket.disconnect()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"accept-language", b"de-DE,de;q=0.9,en;q=0.5")], "Unbekannter Typ."),
        # The switcher's cookie comes before the browser, as for a page.
        (
            [(b"accept-language", b"de"), (b"cookie", b"django_language=sv")],
            "Okänd typ.",
        ),
        ([(b"accept-language", b"pt-BR")], "Unknown type."),  # no pages in Portuguese
        ([], "Unknown type."),
    ],
)
async def test_without_a_chosen_language_the_handshake_decides(headers, expected):
    agent = await database_sync_to_async(AgentFactory)(user__language="")
    socket = await _open(agent.user, headers=headers)

    assert await _unknown_type_message(socket) == expected
    await socket.disconnect()


async def test_a_chosen_language_the_pages_lack_leaves_the_browser_to_decide():
    agent = await database_sync_to_async(AgentFactory)(user__language="pt")
    socket = await _open(agent.user, headers=[(b"accept-language", b"fr")])

    assert await _unknown_type_message(socket) == "Type inconnu."
    await socket.disconnect()


async def test_the_ticket_socket_answers_its_customer_in_their_language():
    from tests.tickets.factories import TicketFactory

    customer = await database_sync_to_async(UserFactory)(role=Role.CUSTOMER, language="de")
    ticket = await database_sync_to_async(TicketFactory)(customer=customer)
    socket = await _open(customer, path=f"/ws/tickets/{ticket.pk}/")

    await socket.send_json_to({"type": "ticket.message", "body": 5})
    answer = await socket.receive_json_from()

    assert answer["error"] == {"code": "invalid", "message": "Geben Sie body als Text an."}
    await socket.send_json_to({"type": "ticket.message", "body": "a\x00b"})
    nul = await socket.receive_json_from()
    assert nul["error"]["message"] == "Der Text darf keine NUL-Zeichen enthalten."
    await socket.disconnect()
