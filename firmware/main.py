# zongji device shell (ESP32, MicroPython): runs at boot after boot.py.
#
# 1. Safe mode: the board's safe-mode button (config.json "board" "pins" "safe_mode") held at
#    boot skips everything below and leaves the REPL, so a broken install can be repaired.
# 2. The rest is zongji.shell.device.boot(): the site bundle is loaded with rollback (a bundle
#    that fails to load is set aside and the previous one restored, zongji/shell/sitefile.py),
#    the network comes up, and the switch serves SIP until Ctrl-C, which saves its state.
#
# Paths are relative to the current directory: "/" on a board, the flash folder on the
# virtual device (`zongji device run`).
import json


def safe_mode():
    try:
        with open("config.json") as f:
            pin = json.load(f)["board"]["pins"]["safe_mode"]
        from machine import Pin

        pull = {"up": Pin.PULL_UP, "down": Pin.PULL_DOWN}.get(pin.get("pull"))
        held = Pin(pin["pin"], Pin.IN, pull).value() == pin.get("active", 0)
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
