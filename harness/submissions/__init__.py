"""Submissions: intake (pin an image to its digest), the SQLite ledger, the daily quota."""

from harness.submissions.intake import PinnedImage, pin_image
from harness.submissions.ledger import EVALUATED, PENDING, RUNNING, Ledger, Submission

__all__ = ["EVALUATED", "PENDING", "RUNNING", "Ledger", "PinnedImage", "Submission", "pin_image"]
