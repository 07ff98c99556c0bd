"""Warren's settings: environment variables prefixed WARREN_, or a .env file beside the app."""

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dashboard.errors import SettingsError

# One step of a JSON path that masking takes: `.name`, `[*]` or `[0]`.
JSON_PATH_STEP = r"\.([^.\[\]]+)|\[(\*|\d+)\]"
ENV_PREFIX = "WARREN_"
# The broker's `consumer_timeout` when rabbitmq.conf does not set it: 30 minutes on every version
# Warren supports (3.10 to 4.x). The management API does not show the value in force.
BROKER_CONSUMER_TIMEOUT = 1800


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # A cluster: the nodes' URLs, comma-separated; Warren uses the first one that answers.
    management_url: str = "http://localhost:15672"
    # A secret: it may carry its own user and password (which then win over USERNAME/PASSWORD).
    # Comma-separated for a cluster, like the management URL.
    amqp_url: SecretStr = SecretStr("amqp://localhost:5672/%2F")
    username: str = "guest"
    password: SecretStr = SecretStr("guest")
    vhost: str = Field(default="/", min_length=1)
    tenant_exchange: str = Field(default="tenants", min_length=1)
    refresh_seconds: float = Field(default=10, ge=1, le=3600)
    request_timeout: float = Field(default=10, gt=0, le=300)
    # A worker saturated at its prefetch with no ack for this long is stuck. Below the broker's
    # consumer timeout, or the broker closes the channel first and the flag never fires.
    stuck_after_seconds: float = Field(default=1500, gt=0)
    # The broker's consumer_timeout, as set in its rabbitmq.conf; unset: the broker's default.
    consumer_timeout_seconds: float | None = Field(default=None, gt=0)
    dead_letter_window_seconds: float = Field(default=900, gt=0)
    # Redeliveries outgrowing acks over this long is a loop (jobs of up to 30 minutes, retried).
    redelivery_window_seconds: float = Field(default=3600, gt=0)
    # Ready rising over this window while consumers are present: `backlog-growing`.
    backlog_window_seconds: float = Field(default=600, gt=0)
    # A dead letter Warren redrove this many times is held back from the next requeue, unless
    # asked: it keeps dying, and another redrive will not help.
    max_redrives: int = Field(default=3, ge=1)
    history_db: Path = Path("~/.local/state/warren/history.sqlite")
    audit_db: Path = Path("~/.local/state/warren/audit.sqlite")
    # `postgresql://user:password@host/database`: the audit log and the history of every
    # console and watcher given it, in one database (instead of the two files above).
    database_url: SecretStr = SecretStr("")
    history_hours: float = Field(default=24, gt=0, le=24 * 90)
    # A Prometheus server scraping the broker's detailed queue metrics: when set, charts longer
    # than the broker's own samples come from it instead of the local history.
    prometheus_url: str | None = None
    # The broker's Prometheus plugin, for counts at scale: a URL, `auto` (port 15692 on the
    # management API's host, used if it answers) or `off`.
    metrics_url: str = "auto"
    # Bindings, queue settings and rates rarely change: at most this often at scale.
    topology_seconds: float = Field(default=60, ge=1, le=3600)
    # Rates and ack counters need the broker's full queue list, seconds at 10,000 queues: the
    # one-shot and the console's first page read them only up to this many queues in the vhost.
    statistics_up_to: int = Field(default=1000, ge=0)
    # Every change refused, for everyone.
    read_only: bool = False
    # "service": every viewer uses USERNAME and PASSWORD (the demo, a trusted network). "login":
    # each browser session logs in as its own broker user, so the broker's permissions apply.
    # "oidc": people sign in through the team's identity provider (.streamlit/secrets.toml,
    # [auth]); Warren acts as USERNAME for all, and ROLES says what each may do.
    auth: Literal["service", "login", "oidc"] = "service"
    # With "oidc": role -> who has it, by ID-token claims (`email:ann@example.com`,
    # `group:sre`, `domain:example.com`, `*`: anyone signed in); the highest that matches.
    roles: dict[Literal["viewer", "operator", "admin"], list[str]] = {"viewer": ["*"]}
    # The lowest role that may read message payloads and headers (peek, browse, export).
    payload_role: Literal["viewer", "operator", "admin"] = "operator"
    # Masked wherever a message is read for a person, search included (reads/masking.py):
    # header names, JSON paths ($.card.number, $.items[*].email), regular expressions.
    mask_headers: list[str] = []
    mask_json_paths: list[str] = []
    mask_patterns: list[str] = []
    # `warren watch`: where it serves /metrics and /healthz (loopback unless said otherwise),
    # the console's address for the links in its alerts, and a receiver to post alerts to.
    watch_address: str = "127.0.0.1"
    watch_port: int = Field(default=9438, ge=1, le=65535)
    console_url: str = "http://localhost:8501"
    webhook_url: str | None = None
    # With "login": a login survives reloads and deep links for this long (0: each reload asks).
    login_keep_seconds: float = Field(default=8 * 3600, ge=0, le=7 * 24 * 3600)

    @field_validator("management_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return ",".join(_shown_http_url(url) for url in _listed(value))

    @field_validator("metrics_url")
    @classmethod
    def _metrics_url(cls, value: str) -> str:
        return value if value in ("auto", "off") else _shown_http_url(value)

    @field_validator("console_url")
    @classmethod
    def _console_url(cls, value: str) -> str:
        return _shown_http_url(value)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return _checked_url(value, ("http", "https")) if value else None

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url(cls, value: str | None) -> str | None:
        return _shown_http_url(value) if value else None

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: SecretStr) -> SecretStr:
        urls = _listed(value.get_secret_value())
        return SecretStr(",".join(_checked_url(url, ("amqp", "amqps")) for url in urls))

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for rules in value.values():
            for rule in rules:
                kind, _, named = rule.partition(":")
                if rule != "*" and (kind not in ("email", "group", "domain") or not named):
                    raise ValueError(
                        f"{rule!r} is not a rule: expected email:<address>, group:<name>, "
                        "domain:<domain> or *"
                    )
        return value

    @field_validator("roles", "mask_headers", "mask_json_paths", "mask_patterns", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        """Given as text (the environment's form, which the demo and the tests pass on as
        values too): JSON."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError('expected JSON, such as ["a", "b"] or {"a": ["b"]}') from None

    @field_validator("mask_json_paths")
    @classmethod
    def _json_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not re.fullmatch(rf"\$(?:{JSON_PATH_STEP})+", path):
                raise ValueError(
                    f"{path!r} is not a JSON path: expected $.name, $.name[*] or $.name[0]"
                )
        return value

    @field_validator("mask_patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        return SecretStr(_checked_url(url, ("postgresql", "postgres")) if url.strip() else "")

    def database(self, file: Path) -> Path | str:
        """Where a store lives: the database of WARREN_DATABASE_URL, else its own `file`."""
        return self.database_url.get_secret_value() or file

    @property
    def consumer_timeout(self) -> float:
        """The broker-wide consumer timeout, in seconds (from 3.12 a queue may set its own)."""
        return self.consumer_timeout_seconds or BROKER_CONSUMER_TIMEOUT

    @model_validator(mode="after")
    def _stuck_before_the_broker_acts(self) -> "Settings":
        if self.stuck_after_seconds >= self.consumer_timeout:
            raise ValueError(
                f"WARREN_STUCK_AFTER_SECONDS ({self.stuck_after_seconds:g}) must be below the "
                f"broker's consumer timeout ({self.consumer_timeout:g} s, "
                "WARREN_CONSUMER_TIMEOUT_SECONDS): the broker closes a channel that holds a "
                "delivery that long, so a stuck worker would never be flagged"
            )
        return self

    @model_validator(mode="after")
    def _one_user_per_session(self) -> "Settings":
        if self.auth == "login" and any(urlsplit(url).username for url in self.amqp_urls()):
            raise ValueError(
                "WARREN_AMQP_URL may not carry a user when WARREN_AUTH=login: each session "
                "connects as the user who logged in"
            )
        return self

    def as_user(self, username: str, password: str) -> "Settings":
        """These settings for another broker user (a console session that logged in)."""
        return self.model_copy(update={"username": username, "password": SecretStr(password)})

    def fingerprint(self) -> str:
        """A digest of every value, the password included, to key caches per configuration."""
        values = self.model_dump() | {
            "password": self.password.get_secret_value(),
            "amqp_url": self.amqp_url.get_secret_value(),
            "database_url": self.database_url.get_secret_value(),
        }
        return hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()

    @property
    def management_urls(self) -> tuple[str, ...]:
        return tuple(self.management_url.split(","))

    def amqp_urls(self) -> list[str]:
        """Each node's AMQP URL, secrets included."""
        return self.amqp_url.get_secret_value().split(",")

    def display_amqp_url(self) -> str:
        """The AMQP URL(s) as they may be shown: without any user or password in them."""
        return ", ".join(without_credentials(url) for url in self.amqp_urls())


def _listed(value: str) -> list[str]:
    urls = [url.strip() for url in value.split(",") if url.strip()]
    if not urls:
        raise ValueError("expected a URL, or several separated by commas")
    return urls


def _shown_http_url(value: str) -> str:
    """An http(s) URL that appears in pages and error sentences, so it may hold no secret."""
    parts = urlsplit(value.strip())
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "put the user and password in WARREN_USERNAME and WARREN_PASSWORD, not in the URL"
        )
    return _checked_url(value, ("http", "https"))


def _checked_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"expected a {' or '.join(schemes)} URL with a host name")
    return value.strip().rstrip("/")


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(**overrides) -> Settings:
    """Read the settings; a bad value becomes one SettingsError line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_first_problem(exc)) from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_input=False, include_url=False)[0]
    reason = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return f"Invalid settings: {reason}."
    return f"Invalid setting {ENV_PREFIX}{str(error['loc'][0]).upper()}: {reason}."
