"""Kazoo faxboxes: the settings of a fax address, its SMTP intake and its notifications."""
