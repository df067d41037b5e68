"""`harness images build` for real: the base image as the container contract runs it, and a build's
error. The sample's determinism and score: tests/test_audit.py (two trains, one model)."""

import pytest

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


def test_build_error_names_the_failing_step(os_base, tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN echo compiling the model\nRUN echo 'no such thing' >&2 && exit 3\n")
    with pytest.raises(ImageBuildError) as err:
        build_context_image("harness-test/broken:latest", tmp_path, {"BASE": os_base}, log=lambda s: None)
    assert "Step 4/4" in str(err.value) and "no such thing" in str(err.value)
    assert "compiling" not in str(err.value)  # only the failing step's output
