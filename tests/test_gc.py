"""``harness gc`` after a real round: the dry run frees nothing and lists exactly what the retention
policy lets go, with its size; ``--apply`` frees it and nothing kept (selected, top-K, the board's
fallback, pending); what a gc stopped midway left is finished; a kept and a freed submission still pass ``harness audit`` from the artifact
store; a second gc finds nothing. Images are the test's own (a label on the behaviour image)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import pytest
from test_round import harness

from harness.runner.docker_backend import DockerBackend
from harness.submissions.ledger import Ledger

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# the round without its smoke stage (what gc keeps and frees are the full phases' runs): two containers a submission, not four
KEEP = ["competition.retention.top_k=1", "competition.leaderboard.final_selections=1", "competition.smoke.enabled=false"]


@pytest.fixture
def own_images(docker_client, behave_image, tmp_path):
    """``make(behaviour)``: a distinct image (its own id) of that behaviour, removed after the test."""
    made: list[str] = []

    def make(behaviour: str) -> str:
        tag = f"harness-test-gc/{behaviour}:{secrets.token_hex(4)}"
        context = tmp_path / tag.replace("/", "-").replace(":", "-")
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {behave_image(behaviour)}\nLABEL org.example.gc-test={tag}\n")
        docker_client.images.build(path=str(context), tag=tag, rm=True, network_mode="none")
        made.append(tag)
        return tag

    make.made = made
    yield make
    for tag in made:
        docker_client.images.remove(tag, force=True)


def run(home: Path, *args: str):
    done = harness(home, *args)
    assert done.returncode == 0, done.stderr
    return done


def gc(home: Path, *args: str) -> dict:
    return json.loads(run(home, "gc", "digits", "--json", *args, *KEEP).stdout)


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` with the hash of its bytes (the ledger's SQLite files and the driver
    lock, which names its holder, left out: taking them rewrites them; so is the data's stat cache,
    data-manifest.json, which records each file's ctime: another xdist worker's hard link to a shared
    prepared image moves it, and the next look at the data writes the cache again)."""
    left_out = ("driver.lock", "data-manifest.json")
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.is_symlink() and "ledger.sqlite3" not in p.name and p.name not in left_out
    }


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) if path.is_dir() else path.stat().st_size


def test_gc_frees_what_no_kept_submission_needs_and_audits_still_pass(home, docker_client, own_images):
    subs = {}
    for name, team, behaviour in [
        ("a1", "alpha", "constant"),
        ("a2", "alpha", "constant"),
        ("a3", "alpha", "constant"),
        ("b1", "beta", "constant"),
        ("b2", "beta", "crash"),
        ("b3", "beta", "constant"),
    ]:
        subs[name] = run(home, "submit", "digits", "--team", team, "--image", own_images(behaviour), *KEEP).stdout.strip()
    run(home, "round", "digits", *KEEP)
    run(home, "select", "digits", "--team", "alpha", subs["a2"], *KEEP)
    subs["p1"] = run(home, "submit", "digits", "--team", "gamma", "--image", own_images("constant"), *KEEP).stdout.strip()

    digits = home / "competitions" / "digits"
    records = {r["submission"]["id"]: r for r in map(json.loads, map(Path.read_text, (digits / "records").glob("*.json")))}
    assert {n: records[subs[n]]["verdict"] for n in subs if n != "p1"} == {
        "a1": "SCORED",
        "a2": "SCORED",
        "a3": "SCORED",
        "b1": "SCORED",
        "b2": "RUNTIME_ERROR",
        "b3": "SCORED",
    }
    model = {n: digits / "runs" / records[subs[n]]["evaluation_id"] / "model" for n in subs if n != "p1"}
    sha = {n: records[subs[n]]["manifest"].get("model_sha256") for n in model}
    digest = {s.id: s.image_digest.removeprefix("sha256:") for s in Ledger(home, "digits").all()}
    # the depot as a cluster round leaves it: image archives and the models nodes sent back
    depot = home / "depot"
    depot.mkdir()
    for name in ("a1", "a3", "p1", "b2"):
        (depot / f"image-{digest[subs[name]]}.tar").write_bytes(os.urandom(1000 + len(name)))
        (depot / f"image-{digest[subs[name]]}.tar.sha256").write_text("x")
    (depot / f"model-{sha['a3']}.tar").write_bytes(os.urandom(3000))
    (depot / f"model-{sha['a3']}.tar.sha256").write_text("x")
    unstored = "f" * 64  # a model the store does not hold (its archive never reached it): kept
    (depot / f"model-{unstored}.tar").write_bytes(os.urandom(2000))
    (depot / f"model-{unstored}.tar.sha256").write_text("x")

    # what a gc stopped midway leaves: a model directory renamed aside, half deleted; a lone sidecar
    aside = model["b1"].parent / ".gc-model-0badc0de"
    (aside / "deep").mkdir(parents=True)
    (aside / "deep" / "weights.bin").write_bytes(os.urandom(100))
    (depot / f"image-{digest[subs['b3']]}.tar.sha256").write_text("x")

    expected = {
        ("interrupted", str(aside), 100),
        ("depot-image", str(depot / f"image-{digest[subs['b3']]}.tar"), 0),
        ("run-model", str(model["a3"]), size(model["a3"])),
        ("run-model", str(model["b3"]), size(model["b3"])),
        ("depot-model", str(depot / f"model-{sha['a3']}.tar"), 3000),
        ("depot-image", str(depot / f"image-{digest[subs['a3']]}.tar"), 1002),
        ("depot-image", str(depot / f"image-{digest[subs['b2']]}.tar"), 1002),
    }

    def images() -> list[str]:  # this test's (other xdist workers add and remove their own meanwhile)
        return sorted(docker_client.images.get(tag).id for tag in own_images.made)

    before, engine = tree(home), images()
    dry = gc(home)
    assert {(i["kind"], i["what"], i["bytes"]) for i in dry["items"]} == expected
    assert len(dry["items"]) == len(expected) and dry["bytes"] == sum(b for _, _, b in expected) and not dry["applied"]
    assert all(i["why"] for i in dry["items"])
    assert tree(home) == before and images() == engine  # a dry run frees nothing

    applied = gc(home, "--apply")
    assert {(i["kind"], i["what"], i["bytes"]) for i in applied["items"]} == expected
    for _, what, _ in expected:
        assert not Path(what).exists() and not Path(f"{what}.sha256").exists()
    assert not list((digits / "runs").glob("*/.gc-*"))
    after = tree(home)
    freed = {k for k in before if k not in after}
    assert all(k.startswith(("competitions/digits/runs/", "depot/")) for k in freed)
    assert {k: before[k] for k in before if k.startswith(("competitions/digits/records/", "mlartifacts/"))} == {
        k: after[k] for k in after if k.startswith(("competitions/digits/records/", "mlartifacts/"))
    }
    for name in ("a1", "a2", "b1"):  # top-1 of alpha, alpha's selection, beta's top-1 and board
        assert model[name].is_dir() and (model[name] / "model.json").is_file()
    for name in ("a3", "b3"):  # their logs and predictions stay
        run_dir = model[name].parent
        assert (run_dir / "logs").is_dir() and (run_dir / "output" / "predictions.csv").is_file()
    for name in ("a1", "p1"):
        assert (depot / f"image-{digest[subs[name]]}.tar").is_file()
    assert (depot / f"model-{unstored}.tar").is_file()
    assert {s.id: s.state for s in Ledger(home, "digits").all()}[subs["p1"]] == "pending"

    assert gc(home)["items"] == []  # a second gc finds nothing
    for name in ("a1", "a3"):  # kept, and freed here: both audited from the artifact store
        audited = harness(home, "audit", "digits", subs[name], *KEEP)
        assert audited.returncode == 0, audited.stdout + audited.stderr
        assert "PASS" in audited.stdout


def test_the_service_frees_after_a_round_unless_told_not_and_a_held_lock_only_delays_it(competition, docker_client, tmp_path):
    """``after_round``, which the service's evaluation loop calls after each round, on a real ledger and depot."""
    import io

    from harness.rounds.journal import take_driver_lock
    from harness.rounds.reclaim import after_round
    from harness.submissions.ledger import WITHDRAWN

    digits = competition()
    ledger = Ledger.of(digits)
    gone = ledger.add("alpha", "img", "sha256:" + "1" * 64)
    ledger.moderate(gone.id, WITHDRAWN, "the team asked")
    depot = digits.home / "depot"
    depot.mkdir()
    archive = depot / f"image-{'1' * 64}.tar"
    archive.write_bytes(b"x" * 500)

    out = io.StringIO()
    after_round(competition("competition.retention.between_rounds=false"), DockerBackend(docker_client), out)
    assert archive.is_file() and out.getvalue() == ""
    lock = take_driver_lock(digits.paths.root / "rounds")  # a round by hand holds the lock
    after_round(digits, DockerBackend(docker_client), out)
    assert archive.is_file() and "harness gc: not finished (a round of this competition is running already" in out.getvalue()
    lock.close()
    after_round(digits, DockerBackend(docker_client), out)
    assert not archive.exists() and out.getvalue().endswith("harness gc: freed 1 item(s), 500 B\n")
