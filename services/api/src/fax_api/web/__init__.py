"""What every dialect uses: its envelopes and errors, paging, token authentication, multipart parsing, the
callback-URL check, OpenAPI request bodies and how handlers are given their collaborators."""
