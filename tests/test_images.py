"""`harness images build` for real, then the sample submission through the container contract."""

import csv

import pytest

from harness.competition.paths import CompetitionPaths
from harness.participant.images import BASE_TAG, ImageBuildError, build_context_image

pytestmark = pytest.mark.docker


def run(client, image, args, volumes, entrypoint=None):
    """Run like the harness does (no network, read-only root, uid 10001); returns the logs."""
    container = client.containers.run(
        image,
        args,
        entrypoint=entrypoint,
        detach=True,
        volumes=volumes,
        read_only=True,
        network_mode="none",
        user="10001:10001",
        tmpfs={"/tmp": "size=64m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        environment={"HARNESS_SEED": "42", "HARNESS_CPUS": "1", "HARNESS_PHASE": args[0]},
    )
    try:
        status = container.wait(timeout=300)
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert status["StatusCode"] == 0, logs
    return logs


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_base_image(docker_client, sample_image):
    config = docker_client.images.get(BASE_TAG).attrs["Config"]
    assert config["User"] == "10001"
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    out = run(
        docker_client,
        BASE_TAG,
        ["-c", "import os, numpy, PIL, torch; print(os.getuid(), os.path.exists('/wheels'), torch.__version__)"],
        {},
        entrypoint=["python3"],
    )
    assert out.startswith("10001 False 2.")


def test_sample_submission_scores_and_is_deterministic(docker_client, sample_image, prepared_data, tmp_path):
    comp = CompetitionPaths.of("digits", prepared_data)
    model = tmp_path / "model"
    model.mkdir(mode=0o777)
    model.chmod(0o777)  # the container's uid 10001 writes here
    logs = run(
        docker_client,
        sample_image,
        ["train"],
        {str(comp.train): {"bind": "/data/train", "mode": "ro"}, str(model): {"bind": "/model", "mode": "rw"}},
    )
    assert "cross-validation accuracy" in logs
    assert (model / "model.pt").is_file()

    predictions = []
    for attempt in range(2):
        out = tmp_path / f"output{attempt}"
        out.mkdir()
        out.chmod(0o777)
        run(
            docker_client,
            sample_image,
            ["infer"],
            {
                str(comp.test): {"bind": "/data/test", "mode": "ro"},
                str(model): {"bind": "/model", "mode": "ro"},
                str(out): {"bind": "/output", "mode": "rw"},
            },
        )
        predictions.append((out / "predictions.csv").read_bytes())
    assert predictions[0] == predictions[1]

    rows = read_csv(tmp_path / "output0" / "predictions.csv")
    truth = {r["id"]: r["label"] for r in read_csv(comp.labels)}
    assert sorted(r["id"] for r in rows) == sorted(truth)
    accuracy = sum(r["label"] == truth[r["id"]] for r in rows) / len(truth)
    assert accuracy >= 0.95


def test_build_error_names_the_failing_step(os_base, tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN echo compiling the model\nRUN echo 'no such thing' >&2 && exit 3\n")
    with pytest.raises(ImageBuildError) as err:
        build_context_image("harness-test/broken:latest", tmp_path, {"BASE": os_base}, log=lambda s: None)
    assert "Step 4/4" in str(err.value) and "no such thing" in str(err.value)
    assert "compiling" not in str(err.value)  # only the failing step's output
