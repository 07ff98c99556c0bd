"""Which messages of a queue a look or an action is about: a selection by what a dead letter
carries (the tenant and reason of its first `x-death`, its routing key, a header's value, its
message id, text in its body, how often Warren redrove it). Browse, export, requeue, republish
and discard all select the same way, so what a search showed is what the action takes."""

from pydantic import BaseModel, Field, PrivateAttr

from dashboard.reads.masking import Masking

# The header each copy a redrive makes carries: how many times Warren put it back.
REDRIVES_HEADER = "x-warren-redrives"


class Selection(BaseModel):
    """Every criterion given must hold; none given selects every message."""

    # A routing key the message died with (its tenant id).
    tenant: str | None = None
    reason: str | None = None
    header: str | None = None
    value: str | None = None
    message_ids: list[str] = Field(default_factory=list)
    text: str | None = None
    # Leave out messages redriven this many times or more.
    redrives_below: int | None = None
    _ids: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def active(self) -> bool:
        return bool(self.words)

    @property
    def reads_body(self) -> bool:
        return self.text is not None

    def model_post_init(self, _context) -> None:
        # Looked up once per message of a pass: a set, not the list of thousands of ids.
        self._ids = frozenset(self.message_ids)

    def matches(self, masking: Masking, properties, routing_key: str, body: bytes = b"") -> bool:
        """Whether the message, as `masking` leaves it for a person, holds every criterion
        given (the cheap ones asked first): masked data is never found."""
        if self._ids and masking.masked_value(properties.message_id) not in self._ids:
            return False
        headers = masking.masked_headers(properties.headers)
        if self.header is not None and text(headers.get(self.header)) != self.value:
            return False
        if self.redrives_below is not None and redrives_of(headers) >= self.redrives_below:
            return False
        if self.tenant is not None or self.reason is not None:
            death = first_death(headers)
            if self.tenant is not None and self.tenant not in texts(death.get("routing-keys", [])):
                return False
            if self.reason is not None and text(death.get("reason")) != self.reason:
                return False
        return self.text is None or self.text.encode() in masking.masked_body(body)

    @property
    def words(self) -> str:
        ids = self.message_ids
        parts = [
            f"tenant {self.tenant!r}" if self.tenant is not None else "",
            f"reason {self.reason!r}" if self.reason is not None else "",
            f"header {self.header}={self.value!r}" if self.header is not None else "",
            f"message id {ids[0]!r}" if len(ids) == 1 else "",
            f"one of {len(ids):,} message ids" if len(ids) > 1 else "",
            f"{self.text!r} in the body" if self.text is not None else "",
            f"redriven fewer than {self.redrives_below} times"
            if self.redrives_below is not None
            else "",
        ]
        return " and ".join(part for part in parts if part)


def first_death(headers: dict) -> dict:
    deaths = headers.get("x-death")
    return deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}


def redrives_of(headers: dict) -> int:
    value = headers.get(REDRIVES_HEADER)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def text(value) -> str | None:
    return (
        value.decode(errors="replace")
        if isinstance(value, bytes)
        else (None if value is None else str(value))
    )


def texts(values) -> list[str]:
    return [text(value) for value in values] if isinstance(values, list) else []
