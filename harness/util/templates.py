"""The Jinja2 environment every harness page is rendered with (the leaderboard page, the audit
report, the service's pages): the package's ``templates/`` folder, every value escaped, an unknown
name an error rather than an empty string."""

from __future__ import annotations

from typing import Any


def html_environment(package: str, **options: Any):
    import jinja2  # the organizer's extra: only the pages need it

    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        **options,
    )
