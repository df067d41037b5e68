"""Errors a user can act on: the CLI prints their message, never a traceback."""


class HarnessError(Exception):
    """A foreseeable problem with the user's input or environment; the message says what to do."""


class ConfigError(HarnessError):
    """The configuration is broken; the message names the key."""


class IntakeError(HarnessError):
    """A submission's image cannot be accepted (verdict INVALID_IMAGE)."""


def first_line(exc: BaseException) -> str:
    """An exception as its type and the first line of its message (a client's error can run to pages)."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
