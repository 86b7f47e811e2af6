"""fax_fetcher."""
