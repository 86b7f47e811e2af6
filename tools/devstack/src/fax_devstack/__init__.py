"""The embedded default: the fax platform and its backing services on one machine, without Docker.

``fax_devstack.infra`` starts Postgres, RabbitMQ and S3 privately (used by ``make run`` and the integration
tests); ``python -m fax_devstack run`` adds migrations, the demo tenant and the five services.
"""
