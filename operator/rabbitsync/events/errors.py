"""Errors of the event layer: one base class so callers can tell "bad event" from "bad code"."""


class EventError(Exception):
    """Base of every error raised by :mod:`rabbitsync.events`."""


class InvalidEvent(EventError):
    """A message body is not a valid rabbitsync CloudEvent (bad JSON, missing or malformed attribute).

    Such a message can never succeed however often it is retried, so consumers treat it as poison.
    """
