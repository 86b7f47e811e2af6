"""The Kazoo faxes controllers."""
