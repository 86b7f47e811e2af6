"""The small kit every service shares: settings, Postgres, migrations, the outbox, the broker, blobs, telemetry."""
