"""Fax.to REST v2 (and the v1 send path): users, balance, cost, send, status, history, files."""
