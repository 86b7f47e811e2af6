"""fax_smtp_gateway."""
