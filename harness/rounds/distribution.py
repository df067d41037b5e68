"""How a round's images and data reach the nodes of a multi-node Ray cluster: a depot on the
driver's node, the workers' registry credential (a node pulls a pushed image by digest, the depot
stays the fallback), and the data each node stages and verifies (``runner.depot``, ``runner.staging``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness.competition.core import Competition
from harness.competition.smoke import SmokeStage
from harness.runner.depot import DataStage, Depot
from harness.runner.staging import RegistryCredential, Staging
from harness.util.errors import HarnessError
from harness.util.hashing import listing_sha256, scan_tree

DEFAULT_NODE_CACHE = Path(tempfile.gettempdir()) / "harness-nodes"
WORKER_USERNAME = "harness-worker"
WORKER_TOKEN_ENV = "HARNESS_REGISTRY_WORKER_TOKEN"


def data_stage(competition: Competition, smoke: SmokeStage | None) -> DataStage:
    """What a node must hold to run a phase: the train and test directories (never the hidden labels),
    each competition phase's test set and the smoke stage's data when there are, with the hash their
    files' digests give them."""
    paths = competition.paths
    names = [d.relative_to(paths.root).as_posix() for d in (paths.train, paths.test)]
    files = dict(competition.data_manifest.under(*(f"{name}/" for name in names)).files)
    extra = [paths.of_phase(phase.name).test for phase in competition.phases]
    if smoke is not None:
        extra += [smoke.paths.train, smoke.paths.test]
    for directory in extra:
        name = directory.relative_to(paths.root).as_posix()
        names.append(name)
        files.update({p: e.digest for p, e in scan_tree(directory, f"{name}/").items()})
    return DataStage(listing_sha256(files), tuple((str(paths.root / name), name) for name in names))


def cluster_staging(competition: Competition, node_cache: str | None, smoke: SmokeStage | None) -> Staging | None:
    """Staging for the cluster Ray is connected to (``smoke``: the round's smoke stage, whose data
    the nodes hold too); None on a single node, where everything is local."""
    if sum(node["Alive"] for node in ray.nodes()) < 2:
        return None
    here = ray.get_runtime_context().get_node_id()
    depot = Depot.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(
        str(competition.home / "depot"), competition.settings.runner.backend
    )
    predictions = competition.settings.competition.predictions
    return Staging(
        depot,
        here,
        node_cache or str(DEFAULT_NODE_CACHE),
        data_stage(competition, smoke),
        worker_credential(competition),
        runs_root=str(competition.paths.runs),
        predictions=(predictions.file, predictions.max_bytes),
    )


def worker_credential(competition: Competition) -> RegistryCredential | None:
    """The workers' registry pull credential: ``$HARNESS_REGISTRY_WORKER_TOKEN``, else the
    ``worker-token`` that ``harness serve`` wrote in the work directory; None without either."""
    token = os.environ.get(WORKER_TOKEN_ENV, "").strip()
    if not token:
        path = competition.home / "service" / competition.name / "worker-token"
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise HarnessError(
                f"the registry worker token {path} cannot be read ({exc}); fix its permissions, or remove it and restart the service"
            ) from None
    return RegistryCredential(WORKER_USERNAME, token) if token else None
