"""The limits spec: sizes, defaults, and errors that name the key."""

from __future__ import annotations

import pytest

from harness.competition.config import load_settings
from harness.limits import Limits, LimitsError
from harness.util.sizes import parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512m", 512 * 1024**2),
        ("2g", 2 * 1024**3),
        ("1.5G", 1536 * 1024**2),
        ("100k", 102400),
        ("64MiB", 64 * 1024**2),
        (4096, 4096),
        ("4096", 4096),
    ],
)
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-1", "5x", True])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_composed_limits_and_overrides():
    settings = load_settings("digits", ["limits.train.wall_clock_s=600", "limits.infer.memory=512m"])
    assert settings.limits.train.wall_clock_s == 600.0
    assert settings.limits.infer.memory == 512 * 1024**2
    assert settings.limits.train.memory == 2 * 1024**3


def test_unknown_limit_is_named():
    with pytest.raises(LimitsError, match=r"limits\.train\.gpu_mem: unknown limit"):
        Limits.from_mapping({"train": {"gpu_mem": "1g"}})


def test_unknown_phase_is_named():
    with pytest.raises(LimitsError, match=r"limits\.score: unknown phase"):
        Limits.from_mapping({"score": {}})


def test_pids_must_be_whole():
    with pytest.raises(LimitsError, match=r"limits\.infer\.pids: 2\.5 is not a whole number"):
        Limits.from_mapping({"infer": {"pids": 2.5}})
