"""Talking to a WordPress site running the Association App plugin: the client, the contract, its
errors, the SSRF guard and the per-host limit."""
