# Runs on MicroPython (imported through `mpy_modem` by test_modem_pdu.py): every job of a JSON
# file through the firmware's PDU codec, one JSON answer a line.
import binascii
import json

import mpy_pdu_network as net
from modem import core, pdu


def dec(p):
    try:
        m = pdu.decode(binascii.unhexlify(p))
    except pdu.PduError as e:
        return {"error": str(e)}
    body = m.body
    if isinstance(body, (bytes, bytearray)):
        body = {"hex": binascii.hexlify(body).decode().upper()}
    return {"kind": m.kind, "smsc": m.smsc, "number": m.number, "scts": m.scts, "dcs": m.dcs,
            "body": body, "concat": m.concat, "status": m.status}


def cmgr(text):
    lines = [ln for ln in text.replace("\r", "\n").split("\n") if ln.strip()]
    head = [i for i, ln in enumerate(lines) if ln.startswith("+CMGR:")][0]
    try:
        stat, m = core.parse_cmgr(lines[head], lines[head + 1])
    except pdu.PduError as e:
        return {"error": str(e)}
    except Exception as e:
        return {"crash": repr(e)}
    return {"stat": stat, "kind": m.kind, "number": m.number, "body_type": type(m.body).__name__}


def answer(job):
    op = job["op"]
    if op == "decode":
        return dec(job["pdu"])
    if op == "cmgr":
        return cmgr(job["text"])
    if op == "submit":
        body = job["text"] if "text" in job else binascii.unhexlify(job["data"])
        try:
            p = pdu.encode_submit(job["number"], body, smsc=job.get("smsc"), vp=job.get("vp"),
                                  dcs=job.get("dcs"))
        except pdu.PduError as e:
            return {"error": str(e)}
        return {"pdu": binascii.hexlify(p).decode().upper(), "tpdu": pdu.tpdu_length(p)}
    if op == "deliver":
        p = net.encode_deliver(job["number"], job["text"], job["scts"], smsc=job.get("smsc"),
                               dcs=job.get("dcs"))
        return {"pdu": binascii.hexlify(p).decode().upper()}
    if op == "address":
        return binascii.hexlify(net.encode_address(job["address"], job["smsc"])).decode().upper()
    if op == "vp":
        return pdu.vp_relative(job["minutes"])
    raise ValueError(op)


def run(path):
    for job in json.load(open(path)):
        print(json.dumps(answer(job)))
