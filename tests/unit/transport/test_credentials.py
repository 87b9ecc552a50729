"""Broker credentials: passwords with reserved characters are never quoted in an error, and every
publish names the user it logged in as (``user_id``), the one thing a receiver can trust."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from rabbitsync import cli
from rabbitsync.django.conf import ImproperlyConfigured, resolve
from rabbitsync.events import MessageProperties
from rabbitsync.transport import BrokerEndpoint, InvalidEndpoint, OutgoingMessage, Timeouts, connection_parameters
from rabbitsync.transport.publisher import pika_properties

pytestmark = pytest.mark.unit

# What base64 and password generators produce: each reserved character of a URI's userinfo.
CUT_SHORT = ["S3cr3t/x", "kX9/+aQ==", "Tz4#Wq9", "Rk2?Vb8", "s3/cr@t:%#x"]
"""Passwords that end the authority early when written raw: '/', '#' and '?'."""
READ_WHOLE = ["p@ssword", "pa:ss:word", "50%off", "a@b:c%d"]
"""Passwords that urllib, pika and the management client all read whole even when written raw."""


def pieces(password: str) -> list[str]:
    """Every run of three or more ordinary characters: none may show up in an error."""
    return [p for p in re.split(r"[^A-Za-z0-9]+", password) if len(p) >= 3]


def assert_hidden(password: str, error: BaseException) -> None:
    texts = [str(error), repr(error), str(error.__cause__ or ""), str(error.__context__ or "")]
    for text in texts:
        for piece in pieces(password):
            assert piece not in text, f"{piece!r} of the password in {text!r}"


def test_the_issue_example_says_what_is_wrong_without_the_password() -> None:
    with pytest.raises(InvalidEndpoint) as caught:
        BrokerEndpoint("amqp://svc:S3cr3t/x@host")
    assert "S3cr3t" not in str(caught.value)
    assert "percent-encode" in str(caught.value) and "%2F" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


@pytest.mark.parametrize("password", CUT_SHORT)
@pytest.mark.parametrize(
    "template",
    [
        "amqp://svc:{}@rabbit.example:5672/prod",
        "amqps://svc:{}@rabbit.example/",
        "amqp://svc:{}@rabbit.example",
        "amqp://svc:{}@[::1]:5672/",
    ],
)
def test_a_raw_password_that_cuts_the_uri_short_is_refused_unquoted(template: str, password: str) -> None:
    with pytest.raises(InvalidEndpoint) as caught:
        BrokerEndpoint(template.format(password))
    assert_hidden(password, caught.value)
    assert "percent-encode" in str(caught.value)


@pytest.mark.parametrize("password", CUT_SHORT)
def test_the_same_in_the_management_uri(password: str) -> None:
    with pytest.raises(InvalidEndpoint) as caught:
        BrokerEndpoint("amqp://rabbit.example/", f"http://svc:{password}@rabbit.example:15672")
    assert_hidden(password, caught.value)


@pytest.mark.parametrize("password", READ_WHOLE)
def test_a_raw_password_read_whole_reaches_every_client_intact(password: str) -> None:
    endpoint = BrokerEndpoint(f"amqp://svc:{password}@rabbit.example/prod")
    params = connection_parameters(endpoint, name="t", timeouts=Timeouts())
    assert (params.credentials.username, params.credentials.password) == ("svc", password)
    assert (params.host, params.virtual_host) == ("rabbit.example", "prod")
    assert endpoint.management().password == password
    assert not set(pieces(password)) & set(re.split(r"\W+", repr(endpoint)))


@pytest.mark.parametrize("password", CUT_SHORT + READ_WHOLE)
def test_every_password_percent_encoded_works(password: str) -> None:
    endpoint = BrokerEndpoint(f"amqp://{quote('svc@x', safe='')}:{quote(password, safe='')}@rabbit.example/")
    params = connection_parameters(endpoint, name="t", timeouts=Timeouts())
    assert (params.credentials.username, params.credentials.password) == ("svc@x", password)
    assert (endpoint.username, endpoint.management().password) == ("svc@x", password)


@pytest.mark.parametrize("password", CUT_SHORT + READ_WHOLE)
def test_pika_option_errors_do_not_quote_the_password(password: str) -> None:
    endpoint = BrokerEndpoint(f"amqp://svc:{quote(password, safe='')}@rabbit/?heartbeat=often")
    with pytest.raises(InvalidEndpoint) as caught:
        connection_parameters(endpoint, name="t", timeouts=Timeouts())
    assert_hidden(password, caught.value)


def test_a_broker_uri_of_the_wrong_type_in_the_django_settings_is_not_quoted() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        resolve({"AMQP_URL": ["amqp://svc:S3cr3t-x@rabbit/"]}, {})
    assert "AMQP_URL" in str(caught.value) and "S3cr3t" not in str(caught.value)
    assert "S3cr3t" not in str(caught.value.__cause__)


def test_the_cli_reports_an_unusable_uri_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--amqp-url", "amqp://svc:S3cr3t/x@rabbit/", "dead-letters", "list", "q.dlq"]) == 2
    err = capsys.readouterr().err
    assert "not a valid URI" in err and "S3cr3t" not in err


@pytest.mark.parametrize(
    ("uri", "user"),
    [
        ("amqp://rabbitsync.east.shop.menu:pw@rabbit/", "rabbitsync.east.shop.menu"),
        ("amqp://u%40x:pw@rabbit/", "u@x"),
        ("amqp://rabbit/", "guest"),  # RabbitMQ's default user, as pika logs in without credentials
    ],
)
def test_the_user_id_is_the_user_the_connection_logs_in_as(uri: str, user: str) -> None:
    endpoint = BrokerEndpoint(uri)
    assert endpoint.username == user
    message = OutgoingMessage("ex", "shop.t", b"{}", MessageProperties("ev-1", "t", 17))
    assert pika_properties(message, user_id=endpoint.username).user_id == user
    assert connection_parameters(endpoint, name="t", timeouts=Timeouts()).credentials.username == user
