"""fax_transmitter."""
