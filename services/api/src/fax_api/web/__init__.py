"""What every dialect shares: its envelopes and errors, paging, multipart parsing, the callback-URL check, token
authentication and the OpenAPI request bodies."""
