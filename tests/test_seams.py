"""The seams an organizer or the next engineer extends, each exercised through its registry with
real parts: a backend chosen by ``runner.backend`` running real containers, record sinks after the
record file, and metrics and data builders installed by another package (a real dist-info with
entry points on sys.path, found by importlib.metadata)."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.competition.core import data_builder
from harness.evaluation.check import check_image
from harness.evaluation.evaluation import Evaluation
from harness.evaluation.local_run import run_phases
from harness.evaluation.recording import record_evaluation
from harness.records.record import EvaluationRecord
from harness.records.sinks import RecordSinks, SinkError
from harness.runner.backend import Backend, _registered, available_backends, create_backend, register_backend
from harness.runner.docker_backend import DockerBackend
from harness.runner.phase import PhaseResult, PhaseSpec
from harness.scoring import get_metric
from harness.scoring.metrics import METRICS, MetricError
from harness.submissions.intake import pin_image
from harness.util.errors import ConfigError
from harness.util.plugins import plugins


class CountingBackend(DockerBackend):
    """The Docker backend under another name, keeping the phases it ran."""

    ran: list[str] = []

    def run(self, spec: PhaseSpec) -> PhaseResult:
        CountingBackend.ran.append(spec.phase)
        return super().run(spec)


@pytest.fixture
def counting_backend():
    register_backend("counting", CountingBackend)
    CountingBackend.ran = []
    yield
    _registered.pop("counting")


def test_the_docker_backend_is_built_in_and_an_unknown_name_says_what_exists():
    assert "docker" in available_backends()
    with pytest.raises(ValueError, match=r"runner.backend: no backend named 'podman' \(available: docker\)"):
        create_backend("podman")


@pytest.mark.docker
def test_check_runs_its_phases_on_the_configured_backend(competition, docker_client, behave_image, counting_backend):
    record = check_image(competition("runner.backend=counting"), behave_image("constant"), out=open(os.devnull, "w"))
    assert record.verdict == "SCORED" and CountingBackend.ran == ["train", "infer"]


@pytest.mark.docker
def test_the_docker_backend_answers_for_its_images_and_its_host(docker_client, behave_image):
    backend = DockerBackend(docker_client)
    assert isinstance(backend, Backend) and backend.name == "docker"
    image = behave_image("constant")
    facts = backend.image(image)
    assert facts is not None and facts.id == docker_client.images.get(image).id
    assert facts.os == "linux" and facts.size_bytes > 0 and facts.config["Entrypoint"] and image in facts.names
    assert backend.image("harness-no-such-image:never") is None
    backend.remove_image("harness-no-such-image:never")  # one that is not there counts as removed
    assert backend.host_facts()["docker_version"] == backend.engine_version() == docker_client.version()["Version"]
    assert "runc" in backend.engine_info()["Runtimes"]


def test_a_round_with_an_unknown_backend_is_refused_before_it_starts(competition, docker_client):
    from harness.rounds.driver import drive_round

    digits = competition("runner.backend=podman")
    with pytest.raises(ConfigError, match="runner.backend: no backend named 'podman'"):
        drive_round(digits)
    assert not (digits.paths.root / "rounds").exists()


class CollectingSink:
    name = "collector"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[tuple[str, bool]] = []

    def evaluated(self, record: EvaluationRecord, directory: Path) -> None:
        self.seen.append((record.evaluation_id, (directory / f"{record.evaluation_id}.json").is_file()))
        if self.fail:
            raise SinkError("the collector is down")

    def rescored(self, record, path) -> None: ...

    def audited(self, record, audit_id, status, reports) -> None: ...


@pytest.mark.docker
def test_sinks_hear_of_a_record_after_its_file_is_written_and_one_failing_sink_stops_no_other(
    competition, docker_client, behave_image, capsys
):
    digits = competition()
    image = behave_image("constant")
    submission = {"id": "sub-sinks", "team": "t", "image": image, "image_digest": pin_image(DockerBackend(docker_client), image).digest}
    evaluation = Evaluation(digits, submission, round_id="round-test")
    run_phases(evaluation, DockerBackend(docker_client), open(os.devnull, "w"), image)
    down, up = CollectingSink(fail=True), CollectingSink()
    record = record_evaluation(evaluation, digits.paths.records, RecordSinks([down, up]))
    assert down.seen == up.seen == [(record.evaluation_id, True)]
    assert "warning: the collector is down" in capsys.readouterr().err


@pytest.fixture
def organizer_package(tmp_path, monkeypatch):
    """An organizer's own package, installed the way pip leaves one: a module and a dist-info whose
    entry points add a metric and a data builder."""
    (tmp_path / "organizer_extras.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from harness.scoring.metrics import register_metric

            @register_metric("median_abs_error", higher_is_better=False, needs="value")
            def median_abs_error(y_true, y_pred, classes):
                return float(np.median(np.abs(y_true - y_pred)))

            def build_toy(root, public_fraction):
                (root / "built").mkdir(parents=True, exist_ok=True)
            """
        )
    )
    info = tmp_path / "organizer_extras-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: organizer-extras\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[harness.metrics]\nmedian_abs_error = organizer_extras\n\n[harness.competitions]\ntoy = organizer_extras:build_toy\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.cache_clear()
    yield
    plugins.cache_clear()
    METRICS.pop("median_abs_error", None)
    sys.modules.pop("organizer_extras", None)


def test_a_metric_from_another_package_is_found_through_its_entry_point(organizer_package):
    from harness.scoring.validate import Predictions

    metric = get_metric("median_abs_error")
    predictions = Predictions(ids=("a", "b", "c"), kind="value", values=np.array([1.0, 2.0, 10.0]))
    assert metric.compute([1.5, 2.0, 4.0], predictions) == 0.5


def test_an_unknown_metric_lists_the_installed_ones(organizer_package):
    with pytest.raises(MetricError, match="unknown metric 'mae_typo' .*median_abs_error"):
        get_metric("mae_typo")


def test_a_data_builder_from_another_package_is_found_by_name(organizer_package, tmp_path):
    data_builder("toy")(tmp_path / "toy", public_fraction=0.5)
    assert (tmp_path / "toy" / "built").is_dir()
    assert data_builder("digits").__module__ == "harness.competition.builders.digits"
    with pytest.raises(
        ConfigError,
        match=r"competition.prepare: 'nope' is neither a registered data builder \(registered: diabetes, digits, files, tables, toy\)",
    ):
        data_builder("nope")
