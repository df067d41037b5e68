"""The OCI registry beside the service: its process, the token issuer, the scopes granted, manifest lookups."""
