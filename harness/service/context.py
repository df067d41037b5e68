"""What every request of one service shares (``app.state.ctx``): the competition, its ledger and
teams, the service's settings and files, the registry's address and issuer key, the failure limiter."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from harness.competition.core import Competition
from harness.competition.paths import ServicePaths
from harness.competition.schema import ServiceConfig
from harness.registry import RegistryClient
from harness.registry.usage import UsageCache
from harness.service import control
from harness.service.ratelimit import FailureLimiter
from harness.submissions.ledger import Ledger
from harness.submissions.teams import Teams

SERVICE_NAME = "harness-registry"  # the registry's token audience (`service=` at the token endpoint)


@dataclass
class ServiceContext:
    competition: Competition
    settings: ServiceConfig
    key: Any  # harness.registry.IssuerKey: signs the registry's tokens
    registry_address: str  # host:port the engine pulls from (this machine)
    registry_public: str  # host:port participants push to
    ledger: Ledger = field(init=False)
    teams: Teams = field(init=False)
    paths: ServicePaths = field(init=False)
    limiter: FailureLimiter = field(init=False)
    trusted_proxies: frozenset[str] = field(init=False)
    registry: RegistryClient = field(init=False)  # reads the registry with tokens it signs itself
    registry_usage: UsageCache = field(init=False)
    caches: dict[str, Any] = field(default_factory=dict)  # the views' bounded caches
    lock: threading.Lock = field(default_factory=threading.Lock)
    _backend: Any = None

    def __post_init__(self) -> None:
        name, home = self.competition.name, self.competition.home
        self.ledger, self.teams, self.paths = Ledger(home, name), Teams(home, name), ServicePaths.of(name, home)
        sign_in = self.settings.sign_in
        self.limiter = FailureLimiter(sign_in.max_failures, sign_in.window_s)
        self.trusted_proxies = frozenset(str(address) for address in self.settings.trusted_proxies)
        self.registry = RegistryClient(self.registry_address, self.key, SERVICE_NAME)
        self.registry_usage = UsageCache(self.registry)

    @property
    def name(self) -> str:
        return self.competition.name

    @property
    def worker_token(self) -> str:
        return control.worker_token(self.paths)

    def paused(self, part: str) -> bool:
        return control.paused(self.paths, part)

    def backend(self):
        """The competition's ``runner.backend`` on this machine's engine, connected on first use (pulls and intake)."""
        with self.lock:
            if self._backend is None:
                from harness.runner import EngineUnavailable, create_backend
                from harness.service.errors import ServiceError

                try:
                    self._backend = create_backend(self.competition.settings.runner.backend)
                except EngineUnavailable as exc:
                    raise ServiceError(503, f"the organizer's Docker engine is not available ({exc}); try again later") from None
            return self._backend
