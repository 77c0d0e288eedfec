"""The sync engine: mapping WordPress records, deciding what to write, and writing it (see
core.py)."""
