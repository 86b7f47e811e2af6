"""Prometheus metrics shared by every service: one definition per name, so dashboards and alerts can rely on them.

``FaxMetrics`` owns a registry; ``default_metrics()`` is the process-wide one that the health server exposes on
``GET /metrics``. Services record into it (``default_metrics().pages_sent.inc(pages)``); nothing is collected at
import time. Label values must come from small fixed sets, never from ids or phone numbers:

- ``state``: the Kazoo job states (``attaching_files``, ``pending``, ``processing``, ``completed``, ``failed``);
- ``direction``: ``outbound`` | ``inbound``; ``media``: ``t38`` | ``g711``;
- ``outcome``: ``delivered`` | ``retrying`` | ``failed`` (calls, notifications), ``ok`` | ``error`` (events, documents);
- ``code``: spandsp's T.30 completion code, or the SIP status code; ``method``: the SIP method (``other`` for any
  but INVITE, OPTIONS, REGISTER, BYE, MESSAGE, SUBSCRIBE, NOTIFY, INFO, PUBLISH); ``trunk``: a configured trunk's name;
- ``channel``: ``email`` | ``sms`` | ``callback``; ``format``: the sniffed document format; ``queue``: the queue name;
- ``event``: the routing key;
- ``reason`` (dropped media): ``stranger`` (not from the call's far end) | ``unanswered`` (far end not known yet).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Seconds a job may wait or work in one state: from a queue hop to a slow 500-page fax.
STATE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
CONVERSION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180)
CALL_BUCKETS = (5, 15, 30, 45, 60, 90, 120, 180, 300, 600, 1200)
LAG_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300)


class FaxMetrics:
    """Every metric the platform exports. Names are part of the operator interface (deploy/grafana, alerts)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry

        # Jobs: the gauge is a snapshot (set from Postgres by whoever polls it); the histogram is per transition.
        self.jobs = Gauge("fax_jobs", "Outbound jobs by state", ["state"], registry=r)
        self.job_transitions = Counter("fax_job_transitions", "Outbound jobs entering a state", ["state"], registry=r)
        self.job_state_seconds = Histogram(
            "fax_job_state_seconds",
            "Time a job spent in a state before leaving it",
            ["state"],
            buckets=STATE_BUCKETS,
            registry=r,
        )

        # Broker and outbox: depth is what waits, lag is how late a consumer sees an event after it happened.
        self.queue_messages = Gauge("fax_queue_messages", "Messages ready in a queue", ["queue"], registry=r)
        self.queue_consumers = Gauge("fax_queue_consumers", "Consumers attached to a queue", ["queue"], registry=r)
        self.consumer_lag_seconds = Histogram(
            "fax_consumer_lag_seconds",
            "Time from an event's occurred_at to its handling",
            ["event"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.events_handled = Counter(
            "fax_events_handled", "Events handled by a consumer", ["event", "outcome"], registry=r
        )
        self.outbox_pending = Gauge("fax_outbox_pending", "Outbox rows not yet published", registry=r)

        # Telephony (transmitter, faxsim).
        self.calls_active = Gauge("fax_calls_active", "Calls in progress", ["direction"], registry=r)
        self.calls = Counter("fax_calls", "Calls ended", ["direction", "outcome", "media"], registry=r)
        self.call_seconds = Histogram(
            "fax_call_seconds", "Duration of a fax call", ["direction"], buckets=CALL_BUCKETS, registry=r
        )
        self.pages_sent = Counter("fax_pages_sent", "Fax pages sent and confirmed by the far end", registry=r)
        self.pages_received = Counter("fax_pages_received", "Fax pages received", registry=r)
        self.t30_completions = Counter(
            "fax_t30_completions",
            "T.30 completion codes at the end of a call (spandsp's numbers)",
            ["direction", "code"],
            registry=r,
        )
        self.sip_responses = Counter(
            "fax_sip_responses", "Final SIP responses to our requests", ["method", "code"], registry=r
        )
        self.sip_trunk_up = Gauge(
            "fax_sip_trunk_up",
            "1 while a trunk answers its OPTIONS probes (or is not probed), 0 while calls skip it",
            ["trunk"],
            registry=r,
        )
        self.sip_failovers = Counter(
            "fax_sip_failovers",
            "Calls a trunk handed to the next one: it timed out, answered 408 or 5xx, or could not be reached",
            ["trunk"],
            registry=r,
        )
        self.sip_refused = Counter(
            "fax_sip_refused",
            "SIP requests answered 403 because their source address is not on the inbound allow-list",
            ["method"],
            registry=r,
        )
        self.media_packets_dropped = Counter(
            "fax_media_packets_dropped",
            "RTP/UDPTL datagrams a call's socket refused: not from its far end, or before the far end was known",
            ["media", "reason"],
            registry=r,
        )

        # Documents (fetcher).
        self.conversion_seconds = Histogram(
            "fax_conversion_seconds",
            "Time to render a document to TIFF-F",
            ["format"],
            buckets=CONVERSION_BUCKETS,
            registry=r,
        )
        self.documents = Counter("fax_documents", "Documents rendered or refused", ["format", "outcome"], registry=r)
        self.sandbox_isolated = Gauge(
            "fax_sandbox_isolated",
            "1 when converters run in the bubblewrap sandbox, 0 when they run without it (FAX_SANDBOX)",
            registry=r,
        )

        # Notifications (notifier).
        self.notifications = Counter(
            "fax_notifications", "Notification deliveries by channel and outcome", ["channel", "outcome"], registry=r
        )

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_default: FaxMetrics | None = None


def default_metrics() -> FaxMetrics:
    """The process-wide metrics, with the process, GC and platform collectors (created on first use)."""
    global _default
    if _default is None:
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        _default = FaxMetrics(registry)
    return _default
