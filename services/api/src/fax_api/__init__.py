"""fax_api."""
