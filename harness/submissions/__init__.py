"""Submissions: intake (pin an image to its digest), the SQLite ledger, the daily quota, the teams and their tokens."""

from harness.submissions.intake import PinnedImage, pin_image
from harness.submissions.ledger import EVALUATED, PENDING, RUNNING, Ledger, Submission
from harness.submissions.teams import Team, Teams

__all__ = ["EVALUATED", "PENDING", "RUNNING", "Ledger", "PinnedImage", "Submission", "Team", "Teams", "pin_image"]
