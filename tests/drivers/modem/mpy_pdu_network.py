# The network's side of the SMS PDU codec, for tests on the MicroPython VM: SMS-DELIVER, as a
# message stored in a phone's inbox, and a bare address field. The terminal only ever decodes
# a DELIVER, so this lives with the tests, built on the firmware's own field encoders.
from modem.pdu import _put_address, _user_data

_MTI_DELIVER = 0  # TP-MTI of an SMS-DELIVER (23.040 §9.2.3.1)


def encode_address(number, smsc=False):
    """Address field (23.040 §9.1.2.5); SMSC form (24.011 §8.2.5.1) counts octets, not digits.
    Leading '+' -> type 0x91 (international, ISDN), else 0x81 (unknown, ISDN)."""
    out = bytearray()
    _put_address(out, number, smsc)
    return bytes(out)


def encode_scts(year, month, day, hour, minute, second, tz_quarters=0):
    """TP-SCTS semi-octets (23.040 §9.2.3.11)."""
    out = bytearray()
    for v in (year % 100, month, day, hour, minute, second):
        out.append(((v % 10) << 4) | (v // 10))
    q = abs(tz_quarters)
    out.append(((q % 10) << 4) | (q // 10) | (0x08 if tz_quarters < 0 else 0))
    return bytes(out)


def encode_deliver(number, body, scts, smsc=None, dcs=None):
    """SMS-DELIVER PDU (23.040 §9.2.2.1), e.g. a message stored to a phone's inbox.
    scts: (year, month, day, hour, minute, second[, tz_quarters])."""
    dcs, udl, ud = _user_data(body, dcs)
    out = bytearray()
    _put_address(out, smsc, True)
    out.append(_MTI_DELIVER)
    _put_address(out, number, False)
    out.append(0)
    out.append(dcs)
    out.extend(encode_scts(*scts))
    out.append(udl)
    out.extend(ud)
    return bytes(out)
