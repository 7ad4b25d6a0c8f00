"""The registry's tables (SQLAlchemy 2). One module so ingest, API and migrations share them.

Times are stored as UTC and always come back timezone-aware (`UTCDateTime`). Enumerations are
stored as short strings with a CHECK constraint (portable between SQLite and PostgreSQL).
Changing a table here needs a new migration in `migrations/versions/`.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Stable constraint names so migrations can drop/alter them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    SCHOOL_ADMIN = "school_admin"  # own school's roster, devices and incidents only
    DISPATCHER = "dispatcher"  # all incidents and the subscriber cards behind them; no roster edits
    AUDITOR = "auditor"  # read-only everything, incl. the audit log
    ADMIN = "admin"  # everything


class NotifyPref(enum.StrEnum):
    SMS = "sms"
    CALL = "call"  # dispatcher phones them; no automatic SMS
    NONE = "none"


class DeviceStatus(enum.StrEnum):
    PROVISIONED = "provisioned"  # keys made, not yet heard from
    ACTIVE = "active"
    SUSPENDED = "suspended"  # packets verified but flagged (e.g. reported lost)
    RETIRED = "retired"  # packets rejected


class IncidentStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"
    DRILL = "drill"


INCIDENT_CLOSED = frozenset(
    {IncidentStatus.RESOLVED, IncidentStatus.FALSE_ALARM, IncidentStatus.DRILL}
)


class IncidentSource(enum.StrEnum):
    DEVICE = "device"  # a U-Relief terminal (UDP or SMS)
    AML = "aml"  # a phone's Advanced Mobile Location message
    SILENT_CALLER = "silent_caller"  # a phone caller who cannot speak, reached by a texted link


class NotificationStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class School(Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # e.g. the education office's code
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subscribers: Mapped[list[Subscriber]] = relationship(back_populates="school")


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"))  # school_admin only
    password_hash: Mapped[str | None] = mapped_column(String(200))  # scrypt$…; None: tokens only
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    school: Mapped[School | None] = relationship()
    tokens: Mapped[list[OperatorToken]] = relationship(back_populates="operator")


class OperatorToken(Base):
    """A bearer token `urt_<key_id>_<secret>`: key_id finds the row, the secret is scrypt-hashed."""

    __tablename__ = "operator_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    operator: Mapped[Operator] = relationship(back_populates="tokens")


class Subscriber(Base):
    """A child enrolled in the service."""

    __tablename__ = "subscribers"
    __table_args__ = (UniqueConstraint("school_id", "pupil_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    pupil_ref: Mapped[str] = mapped_column(String(64))  # the school's own pupil number
    full_name: Mapped[str] = mapped_column(String(200))
    class_name: Mapped[str] = mapped_column(String(32), default="")
    birth_year: Mapped[int | None] = mapped_column(Integer)
    responder_notes: Mapped[str] = mapped_column(Text, default="")  # medical, language, access
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    school: Mapped[School] = relationship(back_populates="subscribers")
    guardians: Mapped[list[Guardian]] = relationship(
        back_populates="subscriber", order_by="Guardian.priority", cascade="all, delete-orphan"
    )
    consents: Mapped[list[Consent]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan"
    )
    devices: Mapped[list[Device]] = relationship(back_populates="subscriber")


class Guardian(Base):
    __tablename__ = "guardians"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20))  # E.164, "+8210…"
    relation: Mapped[str] = mapped_column(String(32), default="")  # mother, father, carer, …
    notify: Mapped[NotifyPref] = mapped_column(_enum(NotifyPref, "notify_pref"), default=NotifyPref.SMS)
    priority: Mapped[int] = mapped_column(Integer, default=1)  # 1 = call first

    subscriber: Mapped[Subscriber] = relationship(back_populates="guardians")


class Consent(Base):
    """Who agreed to what, when. Withdrawal is recorded, never deleted."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    given_by: Mapped[str] = mapped_column(String(200))  # the guardian's name as signed
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id", ondelete="SET NULL"))
    scope: Mapped[str] = mapped_column(String(64))  # "registry", "location", "guardian_sms", …
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    evidence: Mapped[str] = mapped_column(String(300), default="")  # form reference, scan id

    subscriber: Mapped[Subscriber] = relationship(back_populates="consents")


class Device(Base):
    """A terminal, by its protocol device id (u32). `key_sealed` is the device key under the
    server key (see registry.keys)."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # u32
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"), index=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    key_id: Mapped[int] = mapped_column(Integer, default=1)  # device key generation (rotation)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)  # version|nonce|AES-GCM(ct+tag)
    sealed_with: Mapped[str] = mapped_column(String(16))  # server key fingerprint (hex)
    # Key rotation (docs/protocol.md §8): after a re-key under a new key id the old key (sealed
    # the same way) stays valid until the device's first packet under the new one.
    prev_key_id: Mapped[int | None] = mapped_column(Integer)
    prev_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    board: Mapped[str] = mapped_column(String(64), default="")
    firmware_version: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[DeviceStatus] = mapped_column(
        _enum(DeviceStatus, "device_status"), default=DeviceStatus.PROVISIONED
    )
    # Replay protection: highest counter accepted, and a bitmap of the ones below it already seen
    # (bit i set = counter last_counter-1-i seen; 63 bits so it fits a signed BIGINT).
    last_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    replay_bitmap: Mapped[int] = mapped_column(BigInteger, default=0)
    # Server->device counter (downlink nonces): reserved ahead in blocks, never reused per key.
    downlink_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    battery_pct: Mapped[int | None] = mapped_column(Integer)
    battery_mv: Mapped[int | None] = mapped_column(Integer)
    last_lat: Mapped[float | None] = mapped_column(Float)  # WGS-84 degrees
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_accuracy_m: Mapped[float | None] = mapped_column(Float)
    last_fix_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subscriber: Mapped[Subscriber | None] = relationship(back_populates="devices")
    school: Mapped[School | None] = relationship()


class DevicePacket(Base):
    """Every verified packet, stored before it is acked. (device_id, counter) merges UDP/SMS copies."""

    __tablename__ = "device_packets"
    __table_args__ = (UniqueConstraint("device_id", "counter"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    counter: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # sos, track, checkin, answer, cancel, …
    transport: Mapped[str] = mapped_column(String(8))  # udp | sms (first copy to arrive)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # decoded fields
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_status_opened", "status", "opened_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[IncidentStatus] = mapped_column(
        _enum(IncidentStatus, "incident_status"), default=IncidentStatus.OPEN
    )
    source: Mapped[IncidentSource] = mapped_column(
        _enum(IncidentSource, "incident_source"), default=IncidentSource.DEVICE
    )
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), index=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"), index=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("schools.id"), index=True)  # scoping
    caller_msisdn: Mapped[str | None] = mapped_column(String(20))  # AML: the phone's number
    trigger: Mapped[str] = mapped_column(String(16), default="")  # hold, multipress, aml, …
    is_drill: Mapped[bool] = mapped_column(Boolean, default=False)
    duress: Mapped[bool] = mapped_column(Boolean, default=False)  # duress "cancel" seen
    open_counter: Mapped[int | None] = mapped_column(BigInteger)  # counter of the opening SOS
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_accuracy_m: Mapped[float | None] = mapped_column(Float)
    last_fix_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[IncidentEvent]] = relationship(
        back_populates="incident", order_by="IncidentEvent.id"
    )
    device: Mapped[Device | None] = relationship()
    subscriber: Mapped[Subscriber | None] = relationship()


class IncidentEvent(Base):
    """What happened in an incident: kind = position | tap | status | ack | question | answer |
    note | notification | duplicate …; the details are in `payload`."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    device_counter: Mapped[int | None] = mapped_column(BigInteger)
    transport: Mapped[str | None] = mapped_column(String(8))  # udp | sms | aml | http

    incident: Mapped[Incident] = relationship(back_populates="events")


class CallerLink(Base):
    """A one-time link texted to a silent caller (`server/knock.py`). Only the token's SHA-256
    is stored; the phone that opens it first holds it (a cookie whose SHA-256 is `holder_hash`),
    so a forwarded copy of the SMS opens nothing."""

    __tablename__ = "caller_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    msisdn: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # unopened past this: dead
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    holder_hash: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    incident: Mapped[Incident] = relationship()


class Notification(Base):
    """An outbound SMS (guardian notification, question, ack) and its delivery status."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id", ondelete="SET NULL"))
    to_number: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(16))  # guardian | ack | question
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[NotificationStatus] = mapped_column(
        _enum(NotificationStatus, "notification_status"), default=NotificationStatus.QUEUED
    )
    gateway_ref: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    stage: Mapped[str | None] = mapped_column(String(16))  # opened | dispatched | resolved | …
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the sender tries (again); None: nothing to do (sent, delivered, or given up).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # no attempt after this


class PendingDownlink(Base):
    """A downlink to a device that is repeated until the device's RECEIPT confirms it or it
    expires (docs/protocol.md §4, delivery): state pending -> delivered | expired | replaced.
    `message` holds the downlink's fields (sealed afresh for every try); `counters` the
    downlink counters it was sealed under, newest last (bounded)."""

    __tablename__ = "pending_downlinks"
    __table_args__ = (Index("ix_pending_downlinks_state_device", "state", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))  # question | tracking | stand_down | ack | …
    action: Mapped[str] = mapped_column(String(24))  # the operator action that sent it
    message: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counters: Mapped[list[int]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    tries: Mapped[int] = mapped_column(Integer, default=0)
    last_channel: Mapped[str | None] = mapped_column(String(12))  # udp | sms | unreachable
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # delivered, expired, …


class SmsPart(Base):
    """One gateway reference of a notification's attempt: one SMS of a concatenated message
    (a modem's TP-MR), or the whole message (a gateway that splits it itself, e.g. Kannel)."""

    __tablename__ = "sms_parts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    gateway_ref: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # sent | delivered | failed
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    """Append-only: the migration installs triggers refusing UPDATE/DELETE, and each row carries
    the SHA-256 of the previous row's hash and its own content, so gaps and edits show."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    operator_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the log outlives operators
    username: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(24), default="")
    action: Mapped[str] = mapped_column(String(48))  # "subscriber.read", "roster.import", …
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    school_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok | denied | invalid | error
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
