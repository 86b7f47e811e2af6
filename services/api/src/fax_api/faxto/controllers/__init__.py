"""The Fax.to controllers."""
