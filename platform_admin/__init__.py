"""The platform admin app: the cross-organisation pages only super admins see."""
