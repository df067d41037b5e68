"""The organizer's side is an extra (``pip install 'harness[organizer]'``): a participant's install
has no Ray, MLflow, scikit-learn, Pillow or Jinja. A command that needs one of them says so in one
line instead of an ``ImportError`` traceback."""

from __future__ import annotations

import importlib.util

from harness.util.errors import HarnessError

ORGANIZER_EXTRA = "harness[organizer]"
INSTALL_ORGANIZER = f"pip install '{ORGANIZER_EXTRA}'"
# The import names of what the organizer extra installs (pyproject.toml: [project.optional-dependencies] organizer).
ORGANIZER_MODULES = frozenset({"ray", "mlflow", "sklearn", "PIL", "jinja2"})


class MissingExtra(HarnessError):
    """A command needs a package of the organizer extra that is not installed."""


def organizer_missing(exc: ImportError, what: str = "this command") -> MissingExtra | None:
    """The one-line error for ``exc`` when it is a missing organizer package; None for any other import error."""
    module = (exc.name or "").split(".")[0]
    if module not in ORGANIZER_MODULES:
        return None
    return MissingExtra(f"{what} is on the organizer's side and needs {module}, which this install lacks: {INSTALL_ORGANIZER}")


def require_organizer(what: str, *modules: str) -> None:
    """Raise ``MissingExtra`` unless every one of ``modules`` (import names) can be imported."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise organizer_missing(ModuleNotFoundError(name=module), what) or MissingExtra(f"{what} needs {module}")
