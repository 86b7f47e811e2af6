"""fax_notifier."""
