"""The lowest floor: small helpers every other package may use, importing nothing of the harness.

``errors`` (what a user can act on), ``clock`` (timestamps, ids), ``files`` (atomic writes),
``sizes`` and ``fields`` (config values), ``hashing`` (content hashes safe on untrusted trees).
"""
