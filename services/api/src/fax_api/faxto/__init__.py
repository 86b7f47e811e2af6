"""Fax.to REST v2 (and the v1 send path): users and sub-users, API settings, balance, cost, send, status, history,
files and previews, received faxes, numbers. A send is a Kazoo job with its cost reserved in the same transaction."""
