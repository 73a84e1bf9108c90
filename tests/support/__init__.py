"""Test-only helpers: Relay validation, app subprocesses, the Spotlight sidecar."""
