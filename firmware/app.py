# The terminal's application: board pin map -> panic button -> silent haptic confirmation.
import asyncio

import config
import machine
from hw.button import Button
from hw.haptics import SENT, Haptics

RESET_CAUSES = {
    machine.PWRON_RESET: 'power-on',
    machine.HARD_RESET: 'hard reset',
    machine.WDT_RESET: 'watchdog',
    machine.DEEPSLEEP_RESET: 'deep-sleep wake',
    machine.SOFT_RESET: 'soft reset',
}


def reset_cause_name():
    return RESET_CAUSES.get(machine.reset_cause(), 'unknown')


async def main():
    board = config.load_board()
    device = config.load_device()
    print('urelief: boot on', board['name'], '- reset cause:', reset_cause_name())
    haptics = Haptics(board['pins']['vibration'], board['pins'].get('led'))
    button = Button(board['pins']['button'], device['gesture'])
    asyncio.create_task(button.run())
    async for kind, n, t_ms in button:
        print('urelief: gesture', kind, n, 'at', t_ms, 'ms')
        haptics.play(SENT)
