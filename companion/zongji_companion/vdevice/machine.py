"""machine for the virtual device (MicroPython unix port): the port's own machine module
(PinBase, Signal, idle, mem8/16/32, soft_reset, time_pulse_us) plus small fakes of what a
board has and the unix port lacks. It is on MICROPYPATH after firmware/ (zongji device run).

    WDT(timeout=ms)   counts feeds (WDT.feeds) and writes them to vdevice-wdt in the current
                      directory (the flash folder), where `zongji device run` watches them; a
                      feed later than the timeout means a real board would have reset: it
                      says so and exits with WDT_EXIT
    Pin(id, mode, pull, value=None)   a level per pin; an input reads vdevice.json "pins"
                      {"0": 0} in the flash folder (a held button), else its pull
    reset()           exits with RESET_EXIT: `zongji device run` boots the device again
    unique_id()       6 bytes, vdevice.json "unique_id" (hex) or a fixed one
    freq()            240 MHz, as an ESP32
"""

import json
import sys
import time

_path = sys.path
sys.path = []
try:
    from machine import *  # noqa: F403 - the unix port's built-in machine
finally:
    sys.path = _path
del _path

RESET_EXIT = 99
WDT_EXIT = 98
STATUS = "vdevice-wdt"
CONTROL = "vdevice.json"


def _control():
    try:
        with open(CONTROL) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class WDT:
    feeds = 0  # all feeds of every WDT made in this boot (the ESP32 has one watchdog)
    timeout = None

    def __init__(self, id=0, timeout=5000):
        WDT.timeout = timeout
        self._last = time.ticks_ms()
        self._write()

    def feed(self):
        now = time.ticks_ms()
        late = time.ticks_diff(now, self._last)
        if late > WDT.timeout:
            print("machine.WDT: not fed for %d ms (timeout %d ms): a board would reset here" % (late, WDT.timeout))
            sys.exit(WDT_EXIT)
        self._last = now
        WDT.feeds += 1
        self._write()

    def _write(self):
        try:
            with open(STATUS, "w") as f:
                f.write("%d %d\n" % (WDT.feeds, WDT.timeout))
        except OSError:
            pass


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2
    levels = {}  # pin id -> 0/1, what outputs were set to

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        if value is not None:
            Pin.levels[id] = 1 if value else 0

    def init(self, mode=-1, pull=-1, value=None):
        self.__init__(self.id, mode, pull, value)

    def value(self, v=None):
        if v is not None:
            Pin.levels[self.id] = 1 if v else 0
            return None
        if self.mode == Pin.IN:
            held = _control().get("pins", {})
            if str(self.id) in held:
                return 1 if held[str(self.id)] else 0
            return 1 if self.pull == Pin.PULL_UP else 0
        return Pin.levels.get(self.id, 0)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3):
        return None


def reset():
    print("machine.reset(): the board restarts")
    sys.exit(RESET_EXIT)


def unique_id():
    text = _control().get("unique_id")
    if text:
        return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))
    return b"\x24\x0a\xc4\x7a\x6e\x01"


def freq(hz=None):
    return 240000000
