"""VoipNow UAPI: POST /uapi/faxes/{userId}/{extension}."""
