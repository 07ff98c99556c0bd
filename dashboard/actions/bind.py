"""Bind (onboard) tenants: a tenant's queue (with its dead-letter queue) bound to the tenant
exchange with routing key = tenant id. Idempotent: the same request twice changes nothing the
second time; a request that differs from what exists fails, naming the difference, and creates
nothing."""

import re
from collections.abc import Callable
from typing import Literal

import pika.exceptions
from pydantic import BaseModel, Field

from dashboard.actions.access import change
from dashboard.actions.audit import count
from dashboard.broker.amqp import close_quietly
from dashboard.broker.session import Session
from dashboard.errors import PreconditionFailed, VhostMissing, WarrenError
from dashboard.reads.kept_topology import forget_topology

# Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100 characters:
# safe as a routing key, inside a queue name, in a URL and on a command line.
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TENANT_RULE = "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or a digit"


class TenantSpec(BaseModel):
    tenant: str
    queue_type: Literal["classic", "quorum"] = "classic"
    max_priority: int | None = Field(default=10, ge=1, le=255)
    dead_letters: bool = True

    @property
    def queue(self) -> str:
        return tenant_queue(self.tenant)

    def queue_arguments(self, exchange: str) -> dict:
        arguments: dict = {}
        if self.queue_type == "quorum":
            arguments["x-queue-type"] = "quorum"
        elif self.max_priority:
            arguments["x-max-priority"] = self.max_priority
        if self.dead_letters:
            arguments["x-dead-letter-exchange"] = dead_letter_exchange(exchange)
            arguments["x-dead-letter-routing-key"] = self.tenant
        return arguments


class BindResult(BaseModel):
    tenant: str
    queue: str
    outcome: Literal["created", "unchanged", "failed"]
    created: list[str] = Field(default_factory=list)
    error: str | None = None


def tenant_queue(tenant: str) -> str:
    """Warren's queue naming for the tenants it onboards; it never parses tenant ids out of
    queue names: the binding says which tenant a queue serves."""
    return f"tenant.{tenant}"


def dead_letter_exchange(exchange: str) -> str:
    return f"{exchange}.dlx"


def check_tenant_id(tenant: str) -> None:
    if not TENANT_ID.fullmatch(tenant):
        raise WarrenError(f"{tenant!r} is not a valid tenant id: use {TENANT_RULE}.")


def _bind_tenant(session: Session, spec: TenantSpec) -> BindResult:
    """Declare what `spec` needs and bind it. What exists is checked first, against what the
    spec asks for, before anything is created: a mismatch leaves the broker as it was."""
    check_tenant_id(spec.tenant)
    exchange = session.exchange
    declarations = _declarations(spec, exchange)

    def declare_and_bind(connection) -> list[_Step]:
        missing = [step for step in declarations if not _exists(connection, step)]
        for step in declarations:
            if step not in missing:
                _run(connection, step)  # same arguments: changes nothing, or 406
        for step in missing:
            _run(connection, step)
        _bind(connection, spec, exchange)
        return missing

    created = [step.name for step in session.on_amqp(declare_and_bind)]
    return BindResult(
        tenant=spec.tenant,
        queue=spec.queue,
        outcome="created" if created else "unchanged",
        created=created,
    )


class _Step(BaseModel):
    kind: Literal["exchange", "queue"]
    name: str
    arguments: dict = Field(default_factory=dict)


def _declarations(spec: TenantSpec, exchange: str) -> list[_Step]:
    steps = [
        _Step(kind="queue", name=spec.queue, arguments=spec.queue_arguments(exchange)),
        _Step(kind="exchange", name=exchange),
    ]
    if spec.dead_letters:
        steps += [
            _Step(kind="exchange", name=dead_letter_exchange(exchange)),
            _Step(kind="queue", name=f"{spec.queue}.dlq", arguments=_dlq_arguments(spec)),
        ]
    return steps


def _dlq_arguments(spec: TenantSpec) -> dict:
    return {"x-queue-type": "quorum"} if spec.queue_type == "quorum" else {}


def _exists(connection, step: _Step) -> bool:
    channel = connection.channel()
    try:
        if step.kind == "queue":
            channel.queue_declare(step.name, passive=True)
        else:
            channel.exchange_declare(step.name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        raise WarrenError(f"Cannot check {step.kind} {step.name!r}: {exc.reply_text}.") from None
    close_quietly(channel)
    return True


def _run(connection, step: _Step) -> None:
    channel = connection.channel()
    try:
        if step.kind == "queue":
            channel.queue_declare(step.name, durable=True, arguments=step.arguments or None)
        else:
            channel.exchange_declare(step.name, "direct", durable=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise _refusal(step, exc) from None
    close_quietly(channel)


def _refusal(step: _Step, exc: pika.exceptions.ChannelClosedByBroker) -> WarrenError:
    if exc.reply_code != 406:
        return WarrenError(
            f"The broker refused to declare {step.kind} {step.name!r}: {exc.reply_text}."
        )
    differs = re.search(r"inequivalent arg '([^']+)'", exc.reply_text)
    what = f"a different {differs.group(1)}" if differs else "different settings"
    return PreconditionFailed(
        f"{step.kind.capitalize()} {step.name!r} already exists with {what} than asked "
        f"(the broker says: {exc.reply_text}). Nothing was changed."
    )


def _bind(connection, spec: TenantSpec, exchange: str) -> None:
    channel = connection.channel()
    channel.queue_bind(spec.queue, exchange, routing_key=spec.tenant)
    if spec.dead_letters:
        channel.queue_bind(f"{spec.queue}.dlq", dead_letter_exchange(exchange), spec.tenant)
    close_quietly(channel)


def parse_tenant_list(text: str) -> list[str]:
    """Tenant ids from a pasted list or a CSV: one per line (the first column), with blank
    lines, `#` comments and a `tenant` header skipped; each id once, in order."""
    ids = (line.split(",")[0].strip() for line in text.splitlines())
    wanted = (tenant for tenant in ids if tenant and not tenant.startswith("#"))
    return list(dict.fromkeys(tenant for tenant in wanted if tenant != "tenant"))


def bind_sentence(specs: list[TenantSpec], exchange: str) -> str:
    kinds = ", ".join(sorted({spec.queue_type for spec in specs}))
    dead_letters = (
        f", and its dead-letter queue tenant.<id>.dlq bound to {dead_letter_exchange(exchange)!r}"
        if any(spec.dead_letters for spec in specs)
        else ""
    )
    tenants = ", ".join(spec.tenant for spec in specs)
    return (
        f"Bind declares, where missing, the queue tenant.<id> ({kinds}) bound to {exchange!r} "
        f"with routing key = tenant id{dead_letters}, for {count(len(specs), 'tenant')}: "
        f"{tenants}."
    )


def bind(
    session: Session,
    specs: list[TenantSpec],
    actor: str,
    on_result: Callable[[BindResult], None] = lambda _result: None,
) -> list[BindResult]:
    """Each tenant on its own, with its own audit record: one failing does not stop the
    others."""
    results = []
    try:
        for spec in specs:
            result = _audited_bind(session, spec, actor)
            on_result(result)
            results.append(result)
    finally:
        # Even a failed tenant may have left a binding made.
        forget_topology(session)
    return results


def _audited_bind(session: Session, spec: TenantSpec, actor: str) -> BindResult:
    parameters = spec.model_dump() | {"exchange": session.exchange}
    try:
        with change(session, actor, "bind", spec.tenant, parameters) as entry:
            result = _bind_tenant(session, spec)
            entry.outcome, entry.counts = result.outcome, {"created": len(result.created)}
    except VhostMissing:
        raise  # every tenant would fail the same way: one sentence, not a table of them
    except WarrenError as exc:
        result = BindResult(tenant=spec.tenant, queue=spec.queue, outcome="failed", error=str(exc))
    return result
