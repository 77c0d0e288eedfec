"""The accounts app: who logs in (users, organisations, memberships), the login page, and the
tenancy every view goes through."""
