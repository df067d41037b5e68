"""Bundled example competitions (each module has ``prepare(root)`` and ``is_prepared(root)``)."""
