"""Accounts: users, roles, sign-in (passwords, sessions, API keys, tokens, throttle) and the first admin."""
