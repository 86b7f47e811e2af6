"""Kazoo faxes: outbound jobs (outgoing, outbox) and what was received (inbox, incoming) or mailed (smtplog)."""
