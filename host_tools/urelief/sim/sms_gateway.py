"""The simulator's SMS network as the police server's gateway, for a simulator that runs the
server in-process: `create_app(cfg, gateway=SimNetworkGateway(network))`. Messages to emulated
devices go out through `network.deliver`; what devices send to the gateway's number comes in
through `network.on_receive`."""

from __future__ import annotations

import asyncio
import itertools

from urelief.server.sms import SmsGateway, SmsResult


class SimNetworkGateway(SmsGateway):
    name = "sim"

    def __init__(self, network, number: str = "+82112"):
        super().__init__()
        self.network = network  # urelief.sim.modem.network.SmsNetwork
        self.number = number  # the police gateway's own number, as devices see it
        self._refs = itertools.count(1)

    async def start(self, loop: asyncio.AbstractEventLoop, inbound) -> None:
        def on_receive(sms) -> None:  # the simulator's clock thread
            asyncio.run_coroutine_threadsafe(inbound(sms.sender, sms.body), loop)

        self.network.on_receive = on_receive

    async def _send(self, to: str, body: bytes | str) -> SmsResult:
        if not self.network.deliver(to, body, sender=self.number):
            return SmsResult(False, error=f"no such number on the network: {to}")
        return SmsResult(True, [f"sim-{next(self._refs)}"])
