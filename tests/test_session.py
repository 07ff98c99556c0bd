"""One Session per user: a change's access check reuses the answer the page just had from
`/api/whoami`, and short AMQP work (plan, purge, counts) shares one connection."""

import requests

from dashboard.actions.access import access_of
from dashboard.actions.purge import plan_purge, purge
from tests.support.helpers import queue_counts, tenant_with_messages, wait_until


def test_an_action_right_after_the_page_asks_the_broker_who_the_user_is_once(
    session_for, channel, unique, tmp_path
):
    queue = tenant_with_messages(channel, unique("tenants"), "acme", unique("acme"), 7)
    session = session_for(audit_db=tmp_path / "audit.sqlite")
    asked = []
    session.client.session.hooks["response"].append(
        lambda answer, **_: asked.append(answer.url) if answer.url.endswith("/api/whoami") else None
    )

    assert access_of(session).may_act  # what the sidebar asks
    purged = purge(session, plan_purge(session, queue), "test")

    assert (purged, queue_counts(session.settings, queue)[0]) == (7, 0)
    assert len(asked) == 1


def test_plan_purge_and_counts_share_one_amqp_connection_closed_with_the_session(
    broker, session_for, broker_user, channel, unique, tmp_path
):
    queues = [
        tenant_with_messages(channel, unique(f"t{n}"), "acme", unique(f"q{n}"), 3) for n in (1, 2)
    ]
    # A user of its own: other sessions of the run (the console's) may be connected as guest.
    user, password = broker_user("administrator")
    session = session_for(username=user, password=password, audit_db=tmp_path / "audit.sqlite")
    name = f"warren {session.username}"

    for queue in queues:
        assert session.queue_counts(queue) == (3, 0)
        assert purge(session, plan_purge(session, queue), "test") == 3

    def named_like_this_session() -> list[dict]:
        listed = requests.get(
            f"{broker.management_url}/api/connections",
            params={"columns": "name,client_properties"},
            auth=("guest", "guest"),
            timeout=5,
        ).json()
        return [c for c in listed if c["client_properties"].get("connection_name") == name]

    assert len(wait_until(named_like_this_session, what=f"the connection {name!r}")) == 1
    session.close()
    wait_until(lambda: not named_like_this_session(), what=f"{name!r} to be closed")
