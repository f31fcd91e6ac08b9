"""The status LED: one pattern per state, so an installer can read the board from across a room.

    led = Led(machine, {"pin": 2, "active": 1, "kind": "gpio"})   or None: no LED
    led.show("running")
    ms = led.step()                 switch to the pattern's next phase; ms until the next step

Patterns, as on/off times in ms (on first):

    booting      on, steady                       loading the site, starting up
    no-network   500 on, 500 off                  waiting for Wi-Fi / Ethernet / DHCP
    running      50 on, 2950 off                  a short blink every 3 s: all is well
    trunk-down   100 on, 150 off, 100 on, 1650    the provider registration is failing
    fault        50 on, 50 off                    fast flicker: no site, MemoryError, bug

kind "gpio" drives a plain pin (active 1 = on when high); kind "neopixel" an addressable LED
(ESP32-S3 DevKitC), shown white.
"""

PATTERNS = {
    "booting": (1000,),
    "no-network": (500, 500),
    "running": (50, 2950),
    "trunk-down": (100, 150, 100, 1650),
    "fault": (50, 50),
}


class Led:
    def __init__(self, machine, spec):
        self.state = "booting"
        self._phase = 0
        self._on = None
        self._px = None
        self._pin = None
        if not spec or machine is None or spec.get("pin") is None:
            return
        pin = machine.Pin(spec["pin"], machine.Pin.OUT)
        if spec.get("kind") == "neopixel":
            import neopixel

            self._px = neopixel.NeoPixel(pin, 1)
        else:
            self._pin = pin
        self._active = spec.get("active", 1)
        self._set(True)

    def show(self, state):
        if state != self.state and state in PATTERNS:
            self.state = state
            self._phase = 0

    def _set(self, on):
        if on == self._on:
            return
        self._on = on
        if self._pin is not None:
            self._pin.value(self._active if on else 1 - self._active)
        elif self._px is not None:
            self._px[0] = (32, 32, 32) if on else (0, 0, 0)
            self._px.write()

    def step(self):
        pattern = PATTERNS[self.state]
        phase = self._phase % len(pattern)
        self._set(phase % 2 == 0)
        self._phase = phase + 1
        return pattern[phase]
