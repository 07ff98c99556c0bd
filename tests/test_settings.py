"""Settings: defaults, WARREN_ variables, .env, and one line per bad value."""

import os

import pytest

from dashboard.errors import SettingsError
from dashboard.settings import load_settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in [name for name in os.environ if name.startswith("WARREN_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults(clean_env):
    settings = load_settings()
    assert settings.management_url == "http://localhost:15672"
    assert settings.amqp_url.get_secret_value() == "amqp://localhost:5672/%2F"
    assert (settings.username, settings.password.get_secret_value()) == ("guest", "guest")
    assert (settings.vhost, settings.tenant_exchange) == ("/", "tenants")
    assert (settings.refresh_seconds, settings.request_timeout) == (10, 10)


def test_environment_and_dotenv(clean_env, tmp_path):
    (tmp_path / ".env").write_text("WARREN_VHOST=from-dotenv\nWARREN_REFRESH_SECONDS=3\n")
    clean_env.setenv("WARREN_VHOST", "from-env")
    settings = load_settings()
    assert (settings.vhost, settings.refresh_seconds) == ("from-env", 3)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "WARREN_REFRESH_SECONDS",
            "often",
            "Invalid setting WARREN_REFRESH_SECONDS: Input should be a valid number, "
            "unable to parse string as a number.",
        ),
        (
            "WARREN_REFRESH_SECONDS",
            "0",
            "Invalid setting WARREN_REFRESH_SECONDS: Input should be greater than or equal to 1.",
        ),
        (
            "WARREN_MANAGEMENT_URL",
            "localhost:15672",
            "Invalid setting WARREN_MANAGEMENT_URL: expected a http or https URL with a host name.",
        ),
        (
            "WARREN_AMQP_URL",
            "http://localhost",
            "Invalid setting WARREN_AMQP_URL: expected a amqp or amqps URL with a host name.",
        ),
        (
            "WARREN_VHOST",
            "",
            "Invalid setting WARREN_VHOST: String should have at least 1 character.",
        ),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(clean_env, name, value, message):
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == message


def test_a_stuck_threshold_past_the_broker_s_consumer_timeout_is_refused(clean_env):
    clean_env.setenv("WARREN_STUCK_AFTER_SECONDS", "2400")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "Invalid settings: WARREN_STUCK_AFTER_SECONDS (2400) must be below the broker's consumer "
        "timeout (1800 s, WARREN_CONSUMER_TIMEOUT_SECONDS): the broker closes a channel that "
        "holds a delivery that long, so a stuck worker would never be flagged."
    )
    clean_env.setenv("WARREN_CONSUMER_TIMEOUT_SECONDS", "3600")
    assert load_settings().stuck_after_seconds == 2400


def test_passwords_are_never_shown(clean_env):
    clean_env.setenv("WARREN_PASSWORD", "hunter2-secret")
    clean_env.setenv("WARREN_AMQP_URL", "amqp://admin:amqp-secret@broker:5672/%2F")
    settings = load_settings()
    assert "secret" not in repr(settings)
    assert "secret" not in str(settings.model_dump())
    assert settings.display_amqp_url() == "amqp://broker:5672/%2F"


@pytest.mark.parametrize(
    "url", ["http://admin:hunter2-secret@broker:15672", "http://:hunter2-secret@broker"]
)
def test_management_url_with_credentials_is_refused_without_echoing_them(clean_env, url):
    clean_env.setenv("WARREN_MANAGEMENT_URL", url)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "Invalid setting WARREN_MANAGEMENT_URL: put the user and password in WARREN_USERNAME "
        "and WARREN_PASSWORD, not in the URL."
    )
