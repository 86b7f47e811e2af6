"""Fax.to REST v2 under /api/v2 (and the v1 send path of its example), authenticated by ``api_key``.

Parameters come from the query string, a url-encoded or multipart form, or a JSON body, as Fax.to accepts them
(``faxto.dependencies``); the calls the text makes "with a POST or GET call" (send, provision) take either. Errors
answer ``{"status": "failed", "message": ...}`` with an HTTP status that says what went wrong (``web.faxto``, and
``web.errors`` for unknown paths and methods). Jobs and received faxes go by the integer ids the text shows (their
int_id); fax numbers are read as E.164 (fax_runtime.numbers).
"""

from litestar.di import Provide

from fax_api.faxto.dependencies import faxto_call, faxto_params

# Every Fax.to controller's: ``params`` (a call's parameters) and ``call`` (the same with its api_key's user: 401
# without one).
DEPENDENCIES = {"params": Provide(faxto_params), "call": Provide(faxto_call)}
TAGS = ["Fax.to REST v2"]
