"""Server side of protocol v1: verification order, replay window, SMS forms, fuzz (a small run;
the bench runs >= 100k inputs)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urelief import protocol as p
from urelief.bench.protocol import DEV, KEY, SECRET, fuzz_server, sample_sos, seal_raw
from urelief.protocol import codec, seal
from urelief.protocol.replay import WINDOW, WindowState


def _keystore() -> p.MemoryKeyStore:
    return p.MemoryKeyStore({(DEV, KEY): SECRET})


def _sos(counter: int) -> bytes:
    return p.encode_uplink(sample_sos(), device_id=DEV, key_id=KEY, secret=SECRET,
                           counter=counter)


def test_sms_copy_of_a_udp_packet_is_an_authentic_duplicate_that_can_be_reacked():
    ks, rw = _keystore(), p.MemoryReplayWindow()
    pkt = _sos(41)
    first = p.decode_uplink(pkt, ks, rw)
    assert first.ok and first.type == p.MsgType.SOS
    for copy in (p.to_text(pkt), pkt):  # the SMS text copy, then a UDP retry
        again = p.decode_sms(copy, ks, rw)
        assert again.reason == p.Reason.DUPLICATE and again.authentic
        assert again.message == first.message and again.counter == 41


def test_forgeries_do_not_move_the_window():
    ks, rw = _keystore(), p.MemoryReplayWindow()
    forged = bytearray(_sos(1_000_000))
    forged[-1] ^= 0x80
    assert p.decode_uplink(bytes(forged), ks, rw).reason == p.Reason.BAD_TAG
    assert p.decode_uplink(_sos(5), ks, rw).ok  # a forged high counter did not lock it out


def test_commit_false_leaves_the_window_to_the_caller():
    ks, rw = _keystore(), p.MemoryReplayWindow()
    assert p.decode_uplink(_sos(3), ks, rw, commit=False).ok
    assert p.decode_uplink(_sos(3), ks, rw, commit=False).ok  # not recorded yet
    rw.commit(DEV, 3)
    assert p.decode_uplink(_sos(3), ks, rw).reason == p.Reason.DUPLICATE


def test_authentic_but_invalid_fields_are_accepted_with_warnings_never_dropped():
    report = codec.REPORT.pack(codec.F_FIX | codec.F_CELL | codec.F_MOVING, 0, 950_000_000, 0,
                               5, 1, 4, 2, 200, 77, b"\xab\xcd\xef", 1, 2, 3, 90)
    res = p.decode_uplink(seal_raw(0x01, report + b"\x01", 77), _keystore(),
                          p.MemoryReplayWindow())
    assert res.ok and len(res.warnings) == 3
    r = res.message.report
    assert not r.fix and r.lat_e7 is None and not r.cell and not r.moving
    assert r.battery_pct == 77


def test_unknown_enum_values_from_a_newer_device_pass_through_as_ints():
    body = codec.encode_report(p.Report()) + b"\x09"  # trigger 9 is not defined in v1
    res = p.decode_uplink(seal_raw(0x01, body + b"extension", 5), _keystore(),
                          p.MemoryReplayWindow())
    assert res.ok and res.message.trigger == 9  # and appended bytes are ignored


def test_encoder_refuses_what_it_cannot_send():
    for counter in (0, 2**32):
        with pytest.raises(p.EncodeError):
            _sos(counter)
    with pytest.raises(ValueError):
        p.encode_uplink(sample_sos(), device_id=DEV, key_id=16, secret=SECRET, counter=1)
    with pytest.raises(p.EncodeError):
        p.encode_uplink(p.Ack(1), device_id=DEV, key_id=KEY, secret=SECRET, counter=1)


def test_every_message_fits_its_budgets():
    sizes = {t: codec.HEADER_LEN + lay.size + p.TAG_LEN for t, lay in codec.LAYOUTS.items()}
    assert sizes[p.MsgType.SOS] <= 64  # with full position and serving cell
    assert max(n for t, n in sizes.items() if t != p.MsgType.CONFIG) <= 64
    biggest = p.encode_downlink(p.Config(tuple((k, 2**32 - 1) for k in range(16))),
                                device_id=DEV, key_id=KEY, secret=SECRET, counter=1)
    assert len(biggest) <= p.MAX_PACKET <= 140 and len(p.to_text(biggest)) <= 160
    assert len(p.to_text(bytes(p.MAX_PACKET))) <= 160


def test_ctr_matches_a_keystream_built_from_ecb_by_hand():
    """The server's CTR (cryptography's mode) and the firmware's construction agree."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    keys = seal.derive_keys(SECRET)
    ecb = Cipher(algorithms.AES(keys.enc), modes.ECB()).encryptor()
    data = bytes(range(100))
    blocks = b"".join(seal.nonce(7, 1, 99)[:14] + i.to_bytes(2, "big") for i in range(7))
    ks = ecb.update(blocks)
    assert seal.ctr(keys, 7, 1, 99, data) == bytes(a ^ b for a, b in zip(data, ks, strict=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-3, 400), max_size=60))
def test_window_matches_a_reference_model(counters):
    state, seen, highest = WindowState(), set(), 0
    for c in counters:
        if c <= 0 or highest - c > WINDOW:
            want = p.Reason.TOO_OLD
        elif c in seen:
            want = p.Reason.DUPLICATE
        else:
            want = None
        assert state.check(c) == want, (c, highest)
        if want is None:
            state = state.mark(c)
            seen.add(c)
            highest = max(highest, c)
        assert 0 <= state.bitmap < 2**63 and state.highest == highest


def test_decoder_fuzz_small():
    counts = fuzz_server(3000)
    assert counts["accepted"] > 0 and counts["bad_tag"] > 0


def test_cli_decodes_an_sms_text_packet():
    import json

    from click.testing import CliRunner
    from urelief.cli import main

    text = p.to_text(_sos(12))
    out = CliRunner().invoke(main, ["protocol", "decode", text, "--secret", SECRET.hex()])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["verdict"] == "accepted" and shown["fields"]["lat_e7"] == 375_665_350
    bad = CliRunner().invoke(main, ["protocol", "decode", text[:-3] + "AAA", "--secret",
                                    SECRET.hex()])
    assert json.loads(bad.output)["verdict"] == "bad_tag"
