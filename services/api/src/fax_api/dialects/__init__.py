"""The Fax.to REST v2 and VoipNow UAPI dialects: translations onto the same jobs and documents as the Kazoo API."""
