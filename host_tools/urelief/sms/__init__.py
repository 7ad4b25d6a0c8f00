"""SMS below the areas: the host's PDU codec (`urelief.sms.pdu`), shared by the police server's
gateways and the simulator's modem emulator. Independent of the firmware's codec
(firmware/modem/) on purpose; the test vectors hold the two together."""
