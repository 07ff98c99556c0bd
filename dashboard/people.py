"""The people of a team who sign in through its identity provider (WARREN_AUTH=oidc), and what
each may do: a role, given by WARREN_ROLES from the claims of their ID token (email, groups).

Warren acts on the broker as its service user for all of them; the role is Warren's own rule on
top, enforced where every change passes (actions/access.py), and the audit log names the person.
"""

from enum import IntEnum
from typing import Any

from pydantic import BaseModel


class Role(IntEnum):
    """Each role may do what the one below it may, and more."""

    viewer = 1  # everything read-only; payloads hidden unless WARREN_PAYLOAD_ROLE allows
    operator = 2  # also requeue, republish, publish, bind, unbind (keeping the queue), peek
    admin = 3  # also purge, unbind with --delete-queue, discard


class Person(BaseModel):
    """One signed-in person, as their ID token names them, with the role WARREN_ROLES gives."""

    email: str
    email_verified: bool = True
    name: str = ""
    groups: list[str] = []
    role: Role | None = None

    @property
    def shown(self) -> str:
        return self.email or self.name


def person_from_claims(claims: dict[str, Any], roles: dict[str, list[str]]) -> Person:
    """The person an ID token's claims describe, with the highest role any of their rules
    gives: `email:ann@example.com`, `group:sre`, `domain:example.com`, or `*` (anyone signed
    in). No rule matching: no role, and the console shows them nothing."""
    groups = claims.get("groups") or []
    person = Person(
        email=str(claims.get("email") or ""),
        # An address the provider says it has not verified names nobody: `email:` and
        # `domain:` rules do not match it (anyone may register one at a provider open to all).
        email_verified=claims.get("email_verified") is not False,
        name=str(claims.get("name") or claims.get("preferred_username") or ""),
        groups=[groups] if isinstance(groups, str) else [str(group) for group in groups],
    )
    matched = [
        Role[name] for name, rules in roles.items() if any(_matches(rule, person) for rule in rules)
    ]
    return person.model_copy(update={"role": max(matched, default=None)})


def _matches(rule: str, person: Person) -> bool:
    kind, _, value = rule.partition(":")
    if rule == "*":
        return True
    if kind == "email":
        return person.email_verified and person.email.casefold() == value.casefold()
    if kind == "domain":
        return person.email_verified and person.email.casefold().endswith("@" + value.casefold())
    if kind == "group":
        return value in person.groups
    return False
