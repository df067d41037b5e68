"""The submissions of a competition: one JSON file each, written atomically."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import HarnessError
from harness.record import write_json_atomic

PENDING, RUNNING, EVALUATED = "pending", "running", "evaluated"
MAX_TEAM_LENGTH = 64


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Submission:
    id: str
    competition: str
    team: str
    image: str
    image_digest: str
    submitted_at: str
    state: str = PENDING
    evaluations: list[str] = field(default_factory=list)
    infra_failures: int = 0

    def summary(self) -> dict:
        return {"id": self.id, "team": self.team, "image": self.image, "image_digest": self.image_digest, "submitted_at": self.submitted_at}


class Ledger:
    def __init__(self, directory: Path, competition: str) -> None:
        self.directory = directory
        self.competition = competition

    def add(self, team: str, image: str, image_digest: str) -> Submission:
        team = team.strip()
        if not team:
            raise HarnessError("the team name is empty; pass --team NAME")
        if len(team) > MAX_TEAM_LENGTH:
            raise HarnessError(f"the team name is {len(team)} characters long; at most {MAX_TEAM_LENGTH} are allowed")
        submission = Submission(f"sub-{secrets.token_hex(6)}", self.competition, team, image, image_digest, utc_now())
        self.save(submission)
        return submission

    def save(self, submission: Submission) -> None:
        write_json_atomic(self.directory / f"{submission.id}.json", asdict(submission))

    def get(self, submission_id: str) -> Submission:
        path = self.directory / f"{submission_id}.json"
        if not path.is_file():
            raise HarnessError(f"no submission {submission_id!r} in competition {self.competition!r}")
        return Submission(**json.loads(path.read_text(encoding="utf-8")))

    def all(self) -> list[Submission]:
        items = [Submission(**json.loads(p.read_text(encoding="utf-8"))) for p in self.directory.glob("sub-*.json")]
        return sorted(items, key=lambda s: (s.submitted_at, s.id))

    def pending(self) -> list[Submission]:
        # A submission left "running" belongs to a round that died: it is pending again.
        return [s for s in self.all() if s.state in (PENDING, RUNNING)]
