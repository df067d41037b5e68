"""`harness images build` for real, then the sample submission through the container contract."""

import csv

import pytest

from harness.competition.paths import CompetitionPaths
from harness.participant.images import BASE_TAG, ImageBuildError, build_context_image
from harness.util.hashing import tree_sha256

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


def train_and_infer(client, image, comp, root):
    """One train into an empty ``root/model``, then one infer from it into ``root/output``: (model tree hash, predictions' bytes, train logs)."""
    model, out = root / "model", root / "output"
    for directory in (model, out):
        directory.mkdir(parents=True)
        directory.chmod(0o777)  # the container's uid 10001 writes here
    logs = run(
        client, image, ["train"], {str(comp.train): {"bind": "/data/train", "mode": "ro"}, str(model): {"bind": "/model", "mode": "rw"}}
    )
    volumes = {
        str(comp.test): {"bind": "/data/test", "mode": "ro"},
        str(model): {"bind": "/model", "mode": "ro"},
        str(out): {"bind": "/output", "mode": "rw"},
    }
    run(client, image, ["infer"], volumes)
    return tree_sha256(model), (out / "predictions.csv").read_bytes(), logs


@pytest.mark.slow
def test_sample_submission_scores_and_is_deterministic(docker_client, sample_image, prepared_data, tmp_path):
    """Two independent trains (fresh containers, empty model directories) from the same data and seed
    leave byte-identical models, and each model's infer writes the same predictions."""
    comp = CompetitionPaths.of("digits", prepared_data)
    first, second = (train_and_infer(docker_client, sample_image, comp, tmp_path / run_name) for run_name in ("first", "second"))
    for _, _, logs in (first, second):
        assert "cross-validation accuracy" in logs
    assert (tmp_path / "first" / "model" / "model.pt").is_file()
    assert first[0] == second[0]  # the models' tree hashes
    assert first[1] == second[1]  # the predictions

    rows = read_csv(tmp_path / "first" / "output" / "predictions.csv")
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
