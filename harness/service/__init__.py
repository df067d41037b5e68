"""``harness serve``: the competition service (JSON API, pages, the registry's token issuer, the evaluation loop)."""
