"""The connectors app: an organisation's links to its WordPress sites, their pages and settings,
and the WordPress client."""
