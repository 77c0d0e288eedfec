"""web: what every page of the dashboard shares (template tags, keyset pagination, reading
ids from query strings); it imports no other app of the project."""
