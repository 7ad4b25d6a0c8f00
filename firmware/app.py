"""The terminal's application: board pin map + device config -> panic button, haptics, battery,
GNSS, modem, and the alarm runner that turns a gesture into an SOS the police receive."""
import asyncio

import bringup
import config
import machine
from console import event
from periph.button import Button
from periph.haptics import CANNOT_SEND, Haptics

RESET_CAUSES = {
    machine.PWRON_RESET: "power_on",
    machine.HARD_RESET: "hard_reset",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deep_sleep_wake",
    machine.SOFT_RESET: "soft_reset",
}


def reset_cause_name():
    return RESET_CAUSES.get(machine.reset_cause(), "unknown")


def start_battery(board):
    try:
        return bringup.battery(board)
    except Exception as e:  # a gauge that does not answer must not stop the terminal
        print(event("fault", "what=battery_gauge", repr(e)))
        return None


def start_gnss(board):
    from gnss.service import Gnss
    gnss = Gnss(bringup.gnss_power(board))
    uart = bringup.gnss_uart(board)
    if uart is not None:
        gnss.power(True)
        asyncio.create_task(gnss.run_uart(asyncio.StreamReader(uart)))
    return gnss


def modem_gnss_plan(board, modem):
    """The modem's own GNSS: the alarm runs it in windows around its uplinks (alarm/radio.py) as
    gnss/plan.py times them; beside LTE where the modem can (A7670). None for a UART receiver."""
    if board.get("gnss", {}).get("source") != "modem":
        return None
    from gnss.plan import Plan
    return Plan("gnss_with_lte" in modem.caps)


def start_alarm(board, device, haptics, battery, gnss, modem, button):
    from alarm import sleep
    from alarm.outbox import Outbox
    from alarm.runner import Runner
    from alarm.transport import Transport
    from proto.counter import Counter, ReplayGuard
    from proto.packet import Codec
    from proto.seal import Seal

    secret = bytes.fromhex(device["secret"])
    codec = Codec(Seal(secret, device["device_id"], device.get("key_id", 1)))
    runner = Runner(codec, Counter(config.COUNTER_FILE), ReplayGuard(config.DOWNLINK_FILE),
                    Outbox(config.OUTBOX_DIR), haptics, gnss, battery,
                    drill=device.get("drill", False), counting=button.counting,
                    cancel=device.get("cancel"), checkin_s=device.get("checkin_s", 86400),
                    fw=config.FW_VERSION, plan=modem_gnss_plan(board, modem),
                    centre=device.get("centre"))
    srv = device.get("server") or {}
    transport = Transport(modem, srv.get("host"), srv.get("port"), device.get("sms_number"),
                          runner.downlink, runner.kick.set)
    mem = sleep.keep(runner)  # the last-known fix, cell and schedule, before anything is sent
    runner.start(transport)
    asyncio.create_task(transport.run())
    sleep.start(runner, transport, button, mem, gnss, device.get("sleep", False))
    return runner


async def main():
    board = config.load_board()
    device = config.load_device()
    print(event("boot", "board=%s reset=%s fw=%d.%d.%d" % (
        (board["name"] if board else "-", reset_cause_name()) + config.FW_VERSION)))
    for line in config.errors:
        print(line)
    if board is None:
        return  # no button or motor to run: the REPL stays open for provisioning
    pins = board["pins"]
    haptics = Haptics(pins["vibration"], pins.get("led"))
    button = Button(pins["button"], device["gesture"])
    asyncio.create_task(button.run())
    battery = start_battery(board)
    gnss = start_gnss(board)
    runner = None
    missing = config.missing(device)
    if missing:
        print(event("cannot_send", "reason=not_provisioned missing=" + ",".join(
            m.replace(" ", "_") for m in missing)))
    else:
        modem = bringup.modem(board)
        if modem is not None:
            modem.psm = device.get("psm")  # PSM between uses where the dialect has it
        if modem is None:
            print(event("cannot_send", "reason=no_modem"))
        else:
            try:
                runner = start_alarm(board, device, haptics, battery, gnss, modem, button)
            except Exception as e:  # e.g. the counter file is missing or corrupt
                print(event("cannot_send", "reason=alarm_not_started", repr(e)))
    async for kind, n, t_ms in button:
        print(event("gesture", "kind=%s n=%d t_ms=%d" % (kind, n, t_ms)))
        if runner is None:
            haptics.play(CANNOT_SEND)  # never SENT: the child must know to get help another way
            print(event("felt", "pattern=" + CANNOT_SEND))
        else:
            runner.gesture(kind, n, t_ms)
