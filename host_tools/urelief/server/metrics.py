"""Prometheus metrics (served at /metrics). Module-level: one set per process."""

from prometheus_client import Counter, Gauge, Histogram

PACKETS_RECEIVED = Counter(
    "urelief_packets_received_total", "Datagrams/SMS received, before verification", ["channel"])
PACKETS_ACCEPTED = Counter(
    "urelief_packets_accepted_total", "Verified packets durably stored", ["channel", "kind"])
PACKETS_DUPLICATE = Counter(
    "urelief_packets_duplicate_total", "Copies of a stored packet (UDP+SMS, retries): re-acked", ["channel"])
PACKETS_REJECTED = Counter(
    "urelief_packets_rejected_total", "Packets rejected, by reason", ["reason"])
ACK_LATENCY = Histogram(
    "urelief_ack_latency_seconds", "Receive to ack sent (includes the durable commit)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
COMMIT_BATCH = Histogram(
    "urelief_commit_batch_rows", "Rows per group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
COMMIT_SECONDS = Histogram(
    "urelief_commit_seconds", "Duration of one group commit",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5))
INCIDENTS_OPENED = Counter("urelief_incidents_opened_total", "Incidents opened", ["drill"])
INCIDENT_ACTIONS = Counter("urelief_incident_actions_total", "Operator actions on incidents", ["action"])
SMS_SENT = Counter("urelief_sms_sent_total", "Outbound SMS by purpose and result", ["purpose", "status"])
AML_RECEIVED = Counter("urelief_aml_received_total", "AML location messages", ["transport", "result"])
LIVE_CLIENTS = Gauge("urelief_live_clients", "Dashboards connected to the live stream")
GC_FROZEN = Gauge("urelief_gc_frozen_objects",
                  "Objects of the started server kept out of garbage collection (server/gcsettle.py)")
