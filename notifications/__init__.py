"""The notifications app: connector health alerts and their delivery by email and webhook."""
