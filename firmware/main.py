# zongji device shell (ESP32, MicroPython): runs at boot after boot.py.
#
# 1. Safe mode: the board's safe-mode button (config.json "board" "pins" "safe_mode") held in
#    the first second of boot skips everything below and leaves the REPL, so a broken install
#    can be repaired.
# 2. The rest is zongji.shell.device.boot(): the site bundle is loaded with rollback (a bundle
#    that fails to load is set aside and the previous one restored, zongji/shell/sitefile.py),
#    the network comes up, and the switch serves SIP until Ctrl-C, which saves its state.
#
# Paths are relative to the current directory: "/" on a board, the flash folder on the
# virtual device (`zongji device run`).
import json

SAFE_MS = 1000  # how long after reset the button is watched (config.json "safe_mode_ms")


def safe_mode():
    """Is the safe-mode button held during the first SAFE_MS of boot? (On most boards it is
    BOOT, GPIO 0: held through reset it starts the ROM bootloader instead, so it is pressed
    just after reset, within the window.)"""
    try:
        with open("config.json") as f:
            cfg = json.load(f)
        pin = cfg["board"]["pins"]["safe_mode"]
        import time

        from machine import Pin

        pull = {"up": Pin.PULL_UP, "down": Pin.PULL_DOWN}.get(pin.get("pull"))
        button = Pin(pin["pin"], Pin.IN, pull)
        end = time.ticks_add(time.ticks_ms(), cfg.get("safe_mode_ms", SAFE_MS))
        while True:
            held = button.value() == pin.get("active", 0)
            if held or time.ticks_diff(end, time.ticks_ms()) <= 0:
                break
            time.sleep_ms(20)
    except (OSError, ValueError, KeyError, TypeError, ImportError, AttributeError):
        return False  # no config, no button, no machine.Pin: no safe mode
    if held:
        print("zongji: safe mode (the safe-mode button is held): not starting; this is the REPL")
    return held


if not safe_mode():
    try:
        from zongji.shell import device

        device.boot()
    except KeyboardInterrupt:  # Ctrl-C while it was still starting: nothing to save yet
        print("stopped")
    except MemoryError:  # the firmware does not fit: say so and leave the REPL (no reset loop)
        import gc

        gc.collect()
        print("zongji: out of memory while starting (%d bytes free): a board without PSRAM" % gc.mem_free())
        print("zongji: needs the core frozen into its image (boards/manifest.py)")
