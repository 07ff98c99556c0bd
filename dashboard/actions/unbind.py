"""Unbind (offboard) a tenant: its routing key removed from the tenant exchange, and, when asked,
its queue deleted, refused while it holds messages unless forced. Dead-letter queues are kept."""

from pydantic import BaseModel, Field

from dashboard.actions.access import change
from dashboard.actions.audit import count
from dashboard.broker.session import Session
from dashboard.errors import NotFound, WarrenError
from dashboard.reads.kept_topology import forget_topology
from dashboard.reads.overview import tenant_bindings, tenants_by_queue


class UnbindResult(BaseModel):
    tenant: str
    queues: list[str]
    deleted: list[str] = Field(default_factory=list)
    # Messages deleted with a queue (only with force).
    dropped: int = 0


def unbind_sentence(exchange: str, tenant: str, delete: bool, force: bool) -> str:
    return (
        f"Unbind removes routing key {tenant!r} from {exchange!r}"
        + (" and deletes the tenant's queue" if delete else "")
        + (", with any messages in it" if delete and force else "")
        + "."
    )


def unbind(session: Session, tenant: str, delete: bool, force: bool, actor: str) -> UnbindResult:
    """Unbind `tenant`, audited (for callers that confirmed it already)."""
    parameters = {"delete_queue": delete, "force": force}
    try:
        with change(session, actor, "unbind", tenant, parameters) as entry:
            result = _unbind_tenant(session, tenant, delete, force)
            entry.counts = {"queues": len(result.queues), "dropped": result.dropped}
    finally:
        # A failure part-way may have unbound some of the queues.
        forget_topology(session)
    return result


def _unbind_tenant(session: Session, tenant: str, delete: bool, force: bool) -> UnbindResult:
    """Unbind `tenant`'s routing key from the tenant exchange; with `delete`, also delete its
    queue(s), refusing a queue that holds messages unless `force`, or that other tenant ids
    still use. Refusals are checked before anything changes. Dead-letter queues are kept."""
    exchange = session.exchange
    bound = tenants_by_queue(tenant_bindings(session))
    queues = sorted(queue for queue, ids in bound.items() if tenant in ids)
    if not queues:
        raise NotFound(
            f"No queue is bound to {exchange!r} with routing key {tenant!r}: nothing was changed."
        )

    def unbind_and_delete(channel) -> int:
        if delete:
            _check_deletable(channel, queues, bound, tenant, force)
        for queue in queues:
            channel.queue_unbind(queue, exchange, routing_key=tenant)
        return sum(
            channel.queue_delete(queue, if_empty=not force).method.message_count
            for queue in (queues if delete else [])
        )

    dropped = session.on_channel(unbind_and_delete, "The broker refused")
    return UnbindResult(
        tenant=tenant, queues=queues, deleted=queues if delete else [], dropped=dropped
    )


def _check_deletable(channel, queues, bound, tenant: str, force: bool) -> None:
    for queue in queues:
        others = [other for other in bound[queue] if other != tenant]
        if others:
            raise WarrenError(
                f"Queue {queue!r} is also bound for tenant ids {', '.join(others)}: it was "
                "not deleted, and nothing was changed."
            )
        method = channel.queue_declare(queue, passive=True).method
        held = method.message_count
        if held and not force:
            raise WarrenError(
                f"Queue {queue!r} holds {count(held, 'ready message')}: nothing was changed. Force "
                "the deletion (--force) to drop them with the queue."
            )
