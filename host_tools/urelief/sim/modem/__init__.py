"""Emulated AT modems for the virtual board: the same firmware driver runs against these as
against the module. `make("sim7080", sms_network=net).attach(dev)`."""

from urelief.sim.modem.dialects import A7670, DIALECTS, Bg95, Sim7080, make
from urelief.sim.modem.emulator import Faults, ModemEmulator, Timing
from urelief.sim.modem.network import Sms, SmsFaults, SmsNetwork, UdpLink
from urelief.sim.modem.voice import Call, Centre, VoiceTiming

__all__ = ["Call", "Centre", "VoiceTiming", "DIALECTS", "A7670", "Bg95", "Sim7080", "make", "Faults", "ModemEmulator", "Timing",
           "Sms", "SmsFaults", "SmsNetwork", "UdpLink"]
