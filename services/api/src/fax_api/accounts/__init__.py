"""Accounts: users, the API key, auth tokens (Kazoo's users, api_key, user_auth and api_auth)."""
