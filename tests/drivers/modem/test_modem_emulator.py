"""The modem emulator on its own (CPython): its SMS PDUs against the vectors and an independent
decoder, and its AT behaviour fed byte by byte through a bare clock (no board)."""

from datetime import UTC, datetime

import pytest
from modem_vectors import mm_sms
from smspdudecoder.easy import read_incoming_sms
from urelief.sim.clock import Clock
from urelief.sim.modem import SmsNetwork, make
from urelief.sms.pdu import decode_submit, encode_deliver


@pytest.mark.parametrize("v", mm_sms()["submit_encode_vectors"], ids=lambda v: v["test"])
def test_network_reads_device_submits(v):
    sub = decode_submit(bytes.fromhex(v["expected_submit_pdu_hex"]))
    assert sub.number == v["number"] and sub.body == v["text"]


@pytest.mark.parametrize("body", ["ACK 1", "Δ€{}[] öü", "가나다 도와줘", b"\x00\x01\xfe\xff"])
def test_network_deliver_pdus_read_by_smspdudecoder(body):
    when = datetime(2026, 11, 23, 10, 30, 5, tzinfo=UTC)
    got = read_incoming_sms(encode_deliver("+82112", body, when).hex().upper())
    assert got["sender"] == "+82112" and got["date"] == when
    if isinstance(body, str):
        assert got["content"] == body


class Board:
    """Just enough of VirtualDevice for a UART peer: a clock, one UART, one pin."""

    def __init__(self):
        self.clock = Clock(virtual=True)
        self.rx = bytearray()
        self.watchers = []
        board = self

        class Uart:
            def attach(self, peer):
                board.peer = peer

            def send(self, data):
                board.rx += data

        class Pin:
            def on_change(self, cb):
                board.watchers.append(cb)

        self._uart, self._pin = Uart(), Pin()

    def uart(self, _):
        return self._uart

    def pin(self, _):
        return self._pin

    def run(self, ms):
        self.clock.advance_to(self.clock.now_us() + ms * 1000, lambda e: (_ for _ in ()).throw(e))
        self.clock.run_posts(lambda e: (_ for _ in ()).throw(e))

    def at(self, cmd, ms=100):
        self.rx.clear()
        self.peer.on_device_tx(cmd.encode() + b"\r")
        self.run(ms)
        return self.rx.decode("latin-1")

    def press(self, ms):
        t = self.clock.now_ms()
        for cb in self.watchers:
            cb(1, t)
        self.run(ms)
        for cb in self.watchers:
            cb(0, t + ms)


def test_power_echo_errors_and_faults():
    b = Board()
    m = make("sim7080", sms_network=SmsNetwork()).attach(b)
    assert b.at("AT") == ""  # off: silent
    b.press(1100)  # PWRKEY >= 1 s: on
    b.run(2000)
    assert "RDY" in b.rx.decode()
    assert b.at("AT") == "AT\r\r\nOK\r\n"  # echo on after boot (ATE1 default)
    assert b.at("ATE0") == "ATE0\r\r\nOK\r\n" and b.at("AT") == "\r\nOK\r\n"
    assert b.at("AT+NOPE") == "\r\nERROR\r\n"
    b.at("AT+CMEE=1")
    b.run(8000)
    assert b.at("AT+CEREG?") == "\r\n+CEREG: 0,1\r\n\r\nOK\r\n"
    m.faults.errors["AT+CSQ"] = ["+CME ERROR: 100"]
    assert b.at("AT+CSQ") == "\r\n+CME ERROR: 100\r\n"
    assert b.at("AT+CSQ") == "\r\n+CSQ: 18,99\r\n\r\nOK\r\n"
    m.faults.slow_ms = 3000
    assert b.at("AT+CSQ", 100) == "" and "+CSQ" in b.at("", 3000)  # the late answer
    m.faults.slow_ms = 0
    m.faults.no_answer = True
    assert b.at("AT", 5000) == ""
    b.press(1300)  # hung, but PWRKEY still switches it off: announced, dark 1.8 s later
    assert "NORMAL POWER DOWN" in b.rx.decode() and m.on and m.shutting
    b.press(1100)  # ignored while shutting down
    b.run(1000)
    assert not m.on
    m.faults.no_sim = True
    b.press(1100)
    b.run(5000)
    assert b.at("AT+CMEE=1") and b.at("AT+CPIN?") == "AT+CPIN?\r\r\n+CME ERROR: 10\r\n"
    assert m.boots == 2


@pytest.mark.parametrize("dialect", ["sim7080", "bg95"])
def test_psm_radio_off_unreachable_woken_by_pwrkey_or_tau(dialect):
    """+CPSMS=1 with TAU 1 h (T3412 "00100001") and active time 10 s (T3324 "00000101"): after
    the network's RRC release (10 s) and T3324 the module sleeps - deaf on its UART, an SMS for it
    waits at the SMSC - stays registered, and a PWRKEY press or the TAU timer wakes it."""
    b = Board()
    net = SmsNetwork()
    m = make(dialect, sms_network=net).attach(b)
    b.press(1100)
    b.run(10_000)  # booted and registered
    b.at("ATE0")
    if dialect == "sim7080":
        assert b.at("AT+CPSMSTATUS=1") == "\r\nOK\r\n"
    assert b.at('AT+CPSMS=1,,,"00100001","00000101"') == "\r\nOK\r\n"
    assert m.psm_timers_ms() == (3600_000.0, 10_000.0)
    b.rx.clear()
    b.run(19_000)
    assert not m.asleep  # 10 s RRC release + 10 s T3324 not over yet
    b.run(2000)
    assert m.asleep and m.registered and not m.reachable and m.psm_entries == 1
    assert ("+CPSMSTATUS: ENTER PSM" in b.rx.decode()) == (dialect == "sim7080")
    assert b.at("AT", 1000) == ""  # deaf
    assert net.deliver(m.msisdn, "ACK 1")  # the SMSC holds it while the module sleeps
    b.run(10)
    b.run(3000)
    assert m.storage == {} and m.asleep
    b.rx.clear()
    b.press(1100)  # wake: not a power toggle
    b.run(m.t.psm_wake_ms)
    assert m.on and not m.asleep and m.registered and m.boots == 1
    assert b.at("AT") == "\r\nOK\r\n"
    b.run(6000)  # the SMSC's next try reaches it
    assert len(m.storage) == 1
    b.run(25_000)
    assert m.asleep and m.psm_entries == 2
    b.run(3600_000 + m.t.psm_wake_ms)  # T3412: it wakes by itself for the TAU
    assert m.psm_entries == 3 or not m.asleep


def test_a7670_sleeps_by_dtr_still_paged_and_wakes_on_dtr_low():
    """AT+CSCLK=1 with DTR high: after sleep_idle_ms of UART silence the A7670 sleeps - deaf,
    but an SMS still reaches it (RI pulses low, its +CMTI waits) - and DTR low wakes it after
    dtr_wake_ms with the held URC."""
    b = Board()
    net = SmsNetwork()
    m = make("a7670", sms_network=net).attach(b)

    class Line:  # the board's DTR (host output) and RI (module output) pads
        def __init__(self):
            self.level, self.cbs, self.driven = 0, [], []

        def on_change(self, cb):
            self.cbs.append(cb)

        def drive(self, level):
            self.driven.append((b.clock.now_ms(), level))

        def set(self, level):
            self.level = level
            for cb in self.cbs:
                cb(level, b.clock.now_ms())

    dtr, ri = Line(), Line()
    pins = {25: dtr, 33: ri}
    m.attach_sleep_lines(type("Dev", (), {"pin": lambda self, g: pins[g]})(), 25, 33)
    b.press(100)
    b.run(15_000)
    b.at("ATE0")
    b.at("AT+CMGF=0")
    b.at("AT+CNMI=2,1,0,0,0")
    assert b.at("AT+CSCLK=1") == "\r\nOK\r\n"
    dtr.set(1)
    b.run(m.t.sleep_idle_ms + 100)
    assert m.sleeping and m.sleeps == 1 and m.reachable
    assert b.at("AT", 500) == ""  # deaf while asleep
    b.rx.clear()
    assert net.deliver(m.msisdn, "ACK 1")
    b.run(10)  # the SMSC takes it (a post), then delivers 1.5 s later
    b.run(3000)
    assert len(m.storage) == 1 and b.rx == b"" and ri.driven and ri.driven[0][1] == 0
    dtr.set(0)
    b.run(m.t.dtr_wake_ms + 5)
    assert not m.sleeping and "+CMTI" in b.rx.decode()
    assert b.at("AT") == "\r\nOK\r\n"


def _a7670_up() -> tuple[Board, object]:
    b = Board()
    m = make("a7670", sms_network=SmsNetwork()).attach(b)
    b.press(100)
    b.run(15_000)
    b.at("ATE0")
    return b, m


def test_a7670_voice_call_placed_answered_ended_by_the_centre_with_its_audio_settings():
    """ATD<n>; answers OK once dialled; the centre answers (VOICE CALL: BEGIN), the call runs
    with the audio levels set before it; the centre hangs up: VOICE CALL: END, NO CARRIER."""
    from urelief.sim.modem import Centre

    b, m = _a7670_up()
    centre = m.add_centre(Centre("+82231502112", answer_after_ms=3000, hang_up_after_ms=10_000))
    assert b.at("AT+CLVL=?") == "\r\n+CLVL: (0-5)\r\n\r\nOK\r\n"
    assert b.at("AT+CLVL?") == "\r\n+CLVL: 4\r\n\r\nOK\r\n"  # the module's default: audible
    assert b.at("AT+CLVL=9") == "\r\nERROR\r\n"  # out of range (CMEE 0: bare ERROR)
    for cmd in ("AT+CLVL=0", "AT+CRSL=0", "AT+CMUT=0"):
        assert b.at(cmd) == "\r\nOK\r\n"
    assert b.at("ATD+82231502112;") == "\r\nOK\r\n"
    assert b.at("AT+CLCC") == '\r\n+CLCC: 1,0,2,0,0,"+82231502112",145\r\n\r\nOK\r\n'
    b.rx.clear()
    b.run(m.vt.setup_ms + 3000 + 10)
    assert b.rx.decode() == "\r\nVOICE CALL: BEGIN\r\n"
    (call,) = centre.calls
    assert call.direction == "mo" and call.speaker_level == 0 and call.ringer_level == 0
    assert call.mic_muted is False and m.audible == []
    assert b.at("AT+CSQ") .endswith("OK\r\n")  # commands go on during the call
    b.rx.clear()
    b.run(10_000)
    assert b.rx.decode() == "\r\nVOICE CALL: END: 000010\r\n\r\nNO CARRIER\r\n"
    assert call.ended_by == "centre" and m.call is None


def test_a7670_voice_busy_audible_default_incoming_ring_answered_and_hung_up():
    from urelief.sim.modem import Centre

    b, m = _a7670_up()
    m.add_centre(Centre("+82231502112", behaviour="busy"))
    assert b.at("ATD+82231502112;") == "\r\nOK\r\n"
    b.rx.clear()
    b.run(m.vt.setup_ms + 10)
    assert b.rx.decode() == "\r\nBUSY\r\n"
    # at the module's default levels a ring is heard
    m.incoming("+82231502112")
    b.run(10)
    assert m.audible and "ring" in m.audible[0][1]
    assert b.at("AT+CHUP") == "\r\nOK\r\n" and m.call is None
    # silenced, caller id on: RING, +CLIP every ring cycle; ATA connects; AT+CHUP ends it
    b.at("AT+CRSL=0")
    b.at("AT+CLVL=0")
    b.at("AT+CLIP=1")
    heard = len(m.audible)
    b.rx.clear()
    m.incoming("+82231502112")
    b.run(m.vt.ring_every_ms + 10)
    assert b.rx.decode().count('RING\r\n\r\n+CLIP: "+82231502112",145,,,,0') == 2
    assert b.at("ATA") == "\r\nOK\r\n"
    b.rx.clear()
    b.run(m.vt.answer_ms + 10)
    assert b.rx.decode() == "\r\nVOICE CALL: BEGIN\r\n" and len(m.audible) == heard
    b.run(2000)
    assert b.at("AT+CHUP", m.vt.release_ms + 50) == "\r\nOK\r\n\r\nVOICE CALL: END: 000002\r\n"
    assert m.calls[-1].ended_by == "terminal" and m.calls[-1].direction == "mt"
    assert b.at("ATA") == "\r\nNO CARRIER\r\n"  # nothing to answer


def test_dialects_without_voice_refuse_a_dial():
    b = Board()
    make("sim7080", sms_network=SmsNetwork()).attach(b)
    b.press(1100)
    b.run(12_000)
    b.at("ATE0")
    b.at("AT+CMEE=1")
    assert b.at("ATD+82231502112;") == "\r\n+CME ERROR: 4\r\n"  # operation not supported
