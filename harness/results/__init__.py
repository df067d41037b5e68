"""Which results stand, and what is built from them: the one room for the listed records, the
scored submissions, the public/private rule and board building."""

from harness.results.standing import Part, Reader, Results, listing

__all__ = ["Part", "Reader", "Results", "listing"]
