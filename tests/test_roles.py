"""A team's people and their roles (WARREN_AUTH=oidc): the claims of an ID token give a role,
the core enforces it on every change whatever a page shows, the audit log names the person, and
the console shows each role only the actions it may do."""

import json

import pytest

from dashboard.actions.audit import AuditLog
from dashboard.actions.purge import plan_purge, purge
from dashboard.errors import ReadOnly
from dashboard.people import Person, Role, person_from_claims
from pages.components.formatting import literal
from tests.support.helpers import queue_counts, tenant_with_messages

ROLES = {
    "admin": ["group:sre-leads", "email:boss@example.com"],
    "operator": ["group:sre"],
    "viewer": ["domain:example.com"],
}


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"email": "ann@example.com", "groups": ["sre", "sre-leads"]}, Role.admin),
        ({"email": "Boss@Example.com"}, Role.admin),
        ({"email": "bob@example.com", "groups": ["sre"]}, Role.operator),
        ({"email": "bob@example.com", "groups": "sre"}, Role.operator),
        ({"email": "vera@example.com", "groups": ["support"]}, Role.viewer),
        ({"email": "eve@example.com.evil", "groups": ["sre-leadsx"]}, None),
        ({"email": "boss@example.com", "email_verified": False}, None),
        ({"email": "", "name": "no mail"}, None),
    ],
)
def test_claims_give_the_highest_role_any_rule_matches(claims, role):
    assert person_from_claims(claims, ROLES).role == role


def test_the_core_refuses_a_forced_change_beyond_the_role(session_for, channel, unique, tmp_path):
    queue = tenant_with_messages(channel, unique("tenants"), "acme", unique("acme"), 4)
    session = session_for(audit_db=str(tmp_path / "audit.sqlite"))
    people = {
        role: session.acting_for(Person(email=f"{role.name}@example.com", role=role))
        for role in Role
    }

    refusals = {}
    for role in (Role.viewer, Role.operator):
        with pytest.raises(ReadOnly) as caught:
            purge(people[role], plan_purge(people[role], queue), f"{role.name} (test)")
        refusals[role] = str(caught.value)
    assert queue_counts(session.settings, queue) == (4, 0)
    purged = purge(people[Role.admin], plan_purge(people[Role.admin], queue), "admin (test)")

    assert refusals == {
        Role.viewer: "viewer@example.com is a viewer, who may only look: nothing was changed.",
        Role.operator: (
            "operator@example.com is an operator; purge needs the admin role (WARREN_ROLES): "
            "nothing was changed."
        ),
    }
    assert purged == 4
    assert queue_counts(session.settings, queue) == (0, 0)
    records = AuditLog(session.settings.audit_db).records()
    assert [(r.actor, r.outcome) for r in reversed(records)] == [
        ("viewer (test)", "refused"),
        ("operator (test)", "refused"),
        ("admin (test)", "ok"),
    ]


def signed_in(console, channel, unique, tmp_path, claims: dict):
    exchange = unique("tenants")
    tenant_with_messages(channel, exchange, "acme", unique("acme"), 2)
    app = console(
        {"tenant": "acme"},
        page="pages/tenant.py",
        user=claims,
        WARREN_AUTH="oidc",
        WARREN_ROLES=json.dumps(ROLES),
        WARREN_TENANT_EXCHANGE=exchange,
        WARREN_AUDIT_DB=str(tmp_path / "audit.sqlite"),
    )
    assert not app.exception
    return app


def buttons(app) -> list[str]:
    return [button.label for button in app.button]


def test_a_viewer_sees_no_action_and_the_sidebar_names_them(console, channel, unique, tmp_path):
    app = signed_in(
        console, channel, unique, tmp_path, {"email": "vera@example.com", "groups": ["support"]}
    )

    assert [info.value for info in app.info if "Read-only" in info.value] == [
        f"Read-only: {literal('vera@example.com is a viewer, who may only look')}."
    ]
    assert not {"Purge ready messages", "Republish with priority"} & set(buttons(app))
    hidden = "vera@example.com is a viewer; peek needs the operator role (WARREN_PAYLOAD_ROLE)"
    assert f"Payloads are hidden: {literal(hidden)}." in [info.value for info in app.info]
    assert "Peek" not in buttons(app)
    who = f"**Signed in** {literal('vera@example.com')} (viewer), acting as guest"
    assert who in app.sidebar.markdown[0].value


def test_an_operator_requeues_but_does_not_purge(console, channel, unique, tmp_path):
    app = signed_in(
        console, channel, unique, tmp_path, {"email": "bob@example.com", "groups": ["sre"]}
    )

    assert "Republish with priority" in buttons(app)
    assert "Purge ready messages" not in buttons(app)
    actor = literal("bob@example.com (as guest, console)")
    assert any(actor in caption.value for caption in app.caption)


def test_someone_without_a_role_sees_nothing_but_a_sentence(console, channel, unique, tmp_path):
    app = signed_in(console, channel, unique, tmp_path, {"email": "eve@elsewhere.org"})

    assert [error.value for error in app.error] == [
        f"You are signed in as {literal('eve@elsewhere.org')}, and WARREN_ROLES gives you no "
        "role in Warren: ask whoever runs it for one."
    ]
    assert buttons(app) == ["Sign out"]
    assert not app.dataframe


def test_before_signing_in_the_console_offers_only_the_sign_in(console):
    app = console(user={"is_logged_in": False}, WARREN_AUTH="oidc")

    assert not app.exception
    assert buttons(app) == ["Sign in"]
    assert not app.dataframe


def test_the_audit_log_hides_what_records_keep_of_messages_from_who_may_not_read_them(
    console, tmp_path
):
    audit = tmp_path / "audit.sqlite"
    searched = {"vhost": "/", "filter": {"text": "4111111111111111"}}
    with AuditLog(audit).action("bob (test)", "discard", "q.dlq", searched, False, "/") as entry:
        entry.counts = {"discarded": 1, "ids": ["m-4111111111111111"]}

    def audit_page(claims: dict) -> str:
        app = console(
            page="pages/audit.py", user=claims, WARREN_AUTH="oidc",
            WARREN_ROLES=json.dumps(ROLES), WARREN_AUDIT_DB=str(audit),
        )  # fmt: skip
        assert not app.exception
        return app.dataframe[0].value[["counts", "parameters"]].to_string()

    shown_to_vera = audit_page({"email": "vera@example.com", "groups": ["support"]})
    shown_to_bob = audit_page({"email": "bob@example.com", "groups": ["sre"]})

    assert "4111111111111111" not in shown_to_vera
    assert "filter hidden" in shown_to_vera and "ids hidden" in shown_to_vera
    assert "4111111111111111" in shown_to_bob
