"""The records app: the platform's own copies of the records synced from WordPress, their pages,
and the mapping that makes them (records.mapping)."""
