"""faxctl: the fax platform from a terminal, over its Kazoo REST API (and its event exchange for ``events``)."""
