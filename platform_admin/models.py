"""The platform admin app stores nothing of its own: its pages read the other apps' models
(platform_admin/queries.py)."""
