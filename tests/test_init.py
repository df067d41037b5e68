"""`harness init`: the starter folder builds and passes a real `harness check` unchanged."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.participant.images import IMAGES_DIR, SAMPLE_TAG, SAMPLES, build_context_image


def test_init_refuses_a_folder_in_use(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.py").write_text("")
    assert main(["init", str(tmp_path / "mine")]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err


@pytest.mark.docker
@pytest.mark.slow
def test_init_output_passes_harness_check(home, sample_image, tmp_path, capsys):
    """The starter is the sample's own files, so this is also the sample passing `harness check` as
    a participant runs it: its smoke stage first, then scored."""
    folder = tmp_path / "my-submission"
    assert main(["init", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["Dockerfile", "README.md", "main.py"]
    assert "harness check digits --image my-submission" in (folder / "README.md").read_text()
    sample = IMAGES_DIR / SAMPLES[SAMPLE_TAG]  # what `harness images build` builds the sample from
    assert all((folder / name).read_bytes() == (sample / name).read_bytes() for name in ("Dockerfile", "main.py"))
    tag = "harness-test/init-starter:latest"
    build_context_image(tag, folder, log=lambda line: None)  # what `docker build --network none -t ... .` does
    capsys.readouterr()
    assert main(["check", "digits", "--image", tag]) == 0
    out, err = capsys.readouterr()
    assert "verdict: SCORED" in out and "public: accuracy=0.9" in out
    assert err.index("smoke train: OK") < err.index("smoke infer: OK") < err.index("\ntrain: OK") < err.index("\ninfer: OK")
