from hub.services import Services
from tests.factories import inbound


async def test_ingest_once(services: Services) -> None:
    first = await services.inbox.ingest(inbound("<a@x>", subject="Where is my parcel?"))
    again = await services.inbox.ingest(inbound("<a@x>", subject="Where is my parcel?"))
    assert not first.duplicate and again.duplicate
    assert again.message_id == first.message_id
