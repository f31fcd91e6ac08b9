"""zongji (总机): the switchboard core, shared by the ESP32 firmware, host mode and the CLI.

Sans-IO: no sockets, no clocks, no sleeping. Import the modules you need (`zongji.site.dialplan`,
`zongji.call.attendant`, `zongji.site.bundle`, `zongji.sip` ...); this package imports nothing itself so
a device loads only what it uses.
"""

__version__ = "0.1.0"
