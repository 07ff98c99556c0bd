"""Who may change things, enforced where every change passes.

The broker's own permissions apply to every call, since each session uses its user's
credentials. On top of them Warren has its own rule, because the broker lets any user with
`read` permission on a queue purge it: only users tagged `administrator` or `policymaker` may
change anything through Warren. `management`, `monitoring`, other tags or none: read-only. And
WARREN_READ_ONLY=true makes Warren read-only for everyone.

A person signed in through the team's identity provider (WARREN_AUTH=oidc) acts through the
service user, and their role (dashboard/people.py) is the rule instead: a viewer changes nothing
and reads no payload; an operator requeues, republishes, publishes, binds, unbinds (keeping the
queue) and peeks; an admin also purges, discards and deletes a queue it unbinds.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel

from dashboard.actions.audit import AuditRecord, Entry, audit_log
from dashboard.broker.management import naming_a_missing_vhost
from dashboard.broker.session import Session
from dashboard.errors import ReadOnly, Unauthorized, WarrenError
from dashboard.people import Person, Role
from dashboard.settings import Settings

ACTING_TAGS = ("administrator", "policymaker")
RULE = "only users tagged administrator or policymaker may change anything through Warren"


class Access(BaseModel):
    user: str
    tags: list[str]
    # Why this user may only look; None when it may act.
    refusal: str | None = None
    # A person's role (WARREN_AUTH=oidc): which actions they may do, and from which role on
    # payloads may be read (WARREN_PAYLOAD_ROLE).
    role: Role | None = None
    payload_role: Role = Role.operator

    @property
    def may_act(self) -> bool:
        return self.refusal is None

    def may(self, action: str, parameters: dict | None = None) -> bool:
        return self.refusal_for(action, parameters or {}) is None

    def payload_refusal(self) -> str | None:
        """Why this user may not read payloads; None when they may. A broker user may where
        the broker lets it read; a person, from WARREN_PAYLOAD_ROLE on."""
        return None if self.role is None else self.refusal_for("peek", {})

    def refusal_for(self, action: str, parameters: dict) -> str | None:
        """Why this user may not do `action` with `parameters`; None when they may. A read of
        payloads is not a change: a person's role decides it (WARREN_PAYLOAD_ROLE), not whether
        they may change things."""
        if self.role is None:
            return self.refusal
        if self.refusal is not None and action not in PAYLOAD_READS:
            return self.refusal
        needed = needed_role(action, parameters, self.payload_role)
        if self.role < needed:
            setting = "WARREN_PAYLOAD_ROLE" if action in PAYLOAD_READS else "WARREN_ROLES"
            return (
                f"{self.user} is {_a(self.role)}; {action} needs the {needed.name} role ({setting})"
            )
        return None


# What only an admin may do; every other change needs an operator.
ADMIN_ACTIONS = ("purge", "discard")
# Reads that show payloads: from WARREN_PAYLOAD_ROLE on (a viewer too, where it says so).
PAYLOAD_READS = ("peek", "browse", "export")


def needed_role(action: str, parameters: dict, payload_role: Role) -> Role:
    if action in PAYLOAD_READS:
        return payload_role
    if action in ADMIN_ACTIONS or (action == "unbind" and parameters.get("delete_queue")):
        return Role.admin
    return Role.operator


def access_of(session: Session) -> Access:
    """What the session's user may do: a person's role, else the broker user's tags.
    Read-only for everyone needs no question to the broker; otherwise the session's (recent)
    answer from `/api/whoami` says."""
    settings = session.settings
    if session.person is not None:
        return access_of_person(settings, session.person)
    whoami = {"name": settings.username} if settings.read_only else session.whoami()
    return access_from(settings, whoami)


def access_of_person(settings: Settings, person: Person) -> Access:
    access = Access(
        user=person.shown,
        tags=[],
        role=person.role,
        payload_role=Role[settings.payload_role],
    )
    if settings.read_only:
        access.refusal = "Warren is read-only here (WARREN_READ_ONLY=true)"
    elif person.role is None:
        access.refusal = f"{person.shown} has no role in Warren (WARREN_ROLES)"
    elif person.role == Role.viewer:
        access.refusal = f"{person.shown} is a viewer, who may only look"
    return access


def _a(role: Role) -> str:
    return f"{'an' if role.name[0] in 'aeiou' else 'a'} {role.name}"


def access_from(settings: Settings, whoami: dict) -> Access:
    """What the user `whoami` (the management API's answer) may do under `settings`."""
    user = str(whoami.get("name", settings.username))
    tags = _tags(whoami.get("tags"))
    access = Access(user=user, tags=tags)
    if settings.read_only:
        access.refusal = "Warren is read-only here (WARREN_READ_ONLY=true)"
    elif not set(tags) & set(ACTING_TAGS):
        access.refusal = f"User {user!r} ({_tag_words(tags)}) may only look: {RULE}"
    return access


@contextmanager
def change(
    session: Session, actor: str, action: str, target: str, parameters: dict
) -> Iterator[Entry]:
    """The one way into a change: recorded in the audit log before and after it, and refused
    (recorded as refused, nothing changed) unless the user may act."""
    audit = audit_log(session.settings)
    with audit.action(actor, action, target, parameters, False, session.vhost) as entry:
        access = access_of(session)
        # A change (a quorum peek too) needs a user who may change things at all.
        refusal = access.refusal or access.refusal_for(action, parameters)
        if refusal is not None:
            raise ReadOnly(f"{refusal}: nothing was changed.")
        with naming_a_missing_vhost(session.client, session.vhost):
            yield entry


@contextmanager
def touching(
    session: Session,
    actor: str,
    action: str,
    target: str,
    parameters: dict,
    counts_deliveries: bool,
) -> Iterator[Entry]:
    """A read that shows payloads (peek, browse, export): recorded like an action, by anyone who
    may read (a person: an operator or above). One that counts deliveries against the messages
    (a quorum queue) is a change."""
    if counts_deliveries:
        with change(session, actor, action, target, parameters) as entry:
            yield entry
        return
    audit = audit_log(session.settings)
    with (
        audit.action(actor, action, target, parameters, False, session.vhost) as entry,
        naming_a_missing_vhost(session.client, session.vhost),
    ):
        # A person's role decides whether they may see payloads (a broker user's read
        # permission does otherwise).
        if session.person is not None:
            refusal = access_of(session).refusal_for(action, parameters)
            if refusal is not None:
                raise ReadOnly(f"{refusal}: nothing was shown.")
        yield entry


@contextmanager
def planning(
    session: Session, actor: str, action: str, target: str, parameters: dict, dry_run: bool
) -> Iterator[None]:
    """Around an action's plan (`plan_purge` and the like, which read the queue it names): a
    plan that fails is recorded as the action failed, with its sentence; for a user who may not
    act, as the action refused, with the refusal as the error. A dry run is recorded as a dry
    run that failed. Nothing is recorded while planning succeeds: the change records itself."""
    try:
        with naming_a_missing_vhost(session.client, session.vhost):
            yield
    except WarrenError:
        recorded = (
            audit_log(session.settings).action(
                actor, action, target, parameters, True, session.vhost
            )
            if dry_run
            else change(session, actor, action, target, parameters)
        )
        with recorded:
            raise


class AuditView(BaseModel):
    records: list[AuditRecord]
    # The vhosts whose records are shown; None: all records (an administrator's view).
    vhosts: list[str] | None


def audit_view(session: Session, limit: int) -> AuditView:
    """The audit records the session's user may read, those of dead processes marked
    interrupted first: an administrator all of them, anyone else those of the vhosts the broker
    lets it see (records that name no vhost, from before the audit log kept one, only
    administrators). For someone who may not read payloads, what the records keep of messages
    (a search's filter, the ids taken) is hidden: a searched card number is payload too."""
    log = audit_log(session.settings)
    # A console that shows the log notices the actions whose process died since (on any host).
    log.mark_interrupted()
    if "administrator" in _tags(session.whoami().get("tags")):
        view = AuditView(records=log.records(limit), vhosts=None)
    else:
        vhosts = sorted(str(vhost["name"]) for vhost in session.client.list_vhosts())
        view = AuditView(records=log.records(limit, set(vhosts)), vhosts=vhosts)
    if access_of(session).payload_refusal() is not None:
        view.records = [_without_payloads(record) for record in view.records]
    return view


# What a record keeps of the messages an action looked at or took.
PAYLOAD_PARAMETERS = ("filter", "header")
PAYLOAD_COUNTS = ("ids",)


def _without_payloads(record: AuditRecord) -> AuditRecord:
    return record.model_copy(
        update={
            "parameters": _hidden(record.parameters, PAYLOAD_PARAMETERS),
            "counts": _hidden(record.counts, PAYLOAD_COUNTS),
        }
    )


def _hidden(values: dict, keys: tuple[str, ...]) -> dict:
    return {key: "hidden" if key in keys else value for key, value in values.items()}


def _tags(value) -> list[str]:
    # The broker answers a list (3.9 and later) or a comma-separated string (before).
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    return [str(tag) for tag in value or []]


def _tag_words(tags: list[str]) -> str:
    return f"tags: {', '.join(tags)}" if tags else "no tags"


def log_in(settings: Settings, username: str, password: str) -> Session:
    """The session of a console user who logs in as `username`, checked with the broker; a
    refusal is a sentence that never repeats the password."""
    if not username or not password:
        raise Unauthorized("Give a user name and a password.")
    session = Session(settings.as_user(username, password))
    try:
        session.whoami()
    except Exception:
        session.close()
        raise
    return session
