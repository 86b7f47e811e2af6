"""faxsim: the far-end simulator. It answers calls by the dial plan of DESIGN.md and places inbound fax calls."""
