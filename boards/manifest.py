# ruff: noqa: F821  (include and package are the manifest language's own)
# MicroPython manifest for boards without PSRAM (esp32-devkitc, wt32-eth01): the zongji core
# and its ESP32 shell frozen into the firmware image, so their ~250 KB of bytecode runs from
# flash instead of a ~110 KB heap that must hold the site, the phones and the calls.
#
# Build (MicroPython 1.29 source, ESP-IDF set up as in ports/esp32/README.md):
#
#   cd micropython/ports/esp32
#   make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/zongji/boards/manifest.py
#
# then flash build-ESP32_GENERIC/firmware.bin at 0x1000. main.py, config.json and the site
# bundle stay on the filesystem; the frozen zongji package is found before any copy there.

include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules (asyncio, ntptime, ...)
package("zongji", base_path="../firmware")
