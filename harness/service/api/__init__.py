"""The JSON API (``/api/v1``), one router per resource."""

from harness.service.api import health, kit, leaderboard, quota, registry_token, selection, submissions, whoami

ROUTERS = [
    whoami.router,
    submissions.router,
    leaderboard.router,
    selection.router,
    quota.router,
    kit.router,
    health.router,
    registry_token.router,
]
