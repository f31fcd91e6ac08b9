"""network for the virtual device: WLAN and LAN interfaces that report the loopback address.

The unix port has no network module; the host's own stack carries the UDP. An interface is
"connected" once active (a station once it was given an SSID) while the link is up; the link
is down while vdevice.json in the current directory (the flash folder) says {"link": "down"},
which is how fault tests drop and restore it; {"ip": "127.0.0.2"} is a new DHCP lease;
{"wifi": {"SSID": "password", ...}} are the networks in reach (without it any SSID joins): a
station given another SSID reports STAT_NO_AP_FOUND, a wrong password STAT_WRONG_PASSWORD,
as an ESP32's radio does. Nothing
here touches the host's interfaces: loopback itself never goes down. What makes a drop real is
the shell, as on a board: it sees isconnected() False within a second, closes its SIP socket
(so phones and the provider get no answer, and what it sends fails as a transport error) and
binds it again when the link returns (zongji/shell/device.py _follow_link, shell/udp.py).
tests/device/test_faults.py drops the link this way.
"""

import json

STA_IF = 0
AP_IF = 1
PHY_LAN8720 = 1
PHY_IP101 = 2
PHY_RTL8201 = 3
PHY_DP83848 = 4
PHY_KSZ8041 = 5
PHY_KSZ8081 = 6
ETH_INITIALIZED = 0
ETH_STARTED = 1
ETH_STOPPED = 2
ETH_CONNECTED = 3
ETH_DISCONNECTED = 4
ETH_GOT_IP = 5
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
ADDRESS = ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
NONE = ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")


def _control():
    try:
        with open("vdevice.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def link_up():
    return _control().get("link", "up") != "down"


class _Nic:
    def __init__(self, kind):
        self.kind = kind
        self._active = False
        self._ssid = None
        self._key = None
        self._config = {"essid": "", "mac": b"\x24\x0a\xc4\x7a\x6e\x01"}

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        return None

    def connect(self, ssid=None, key=None, bssid=None):
        self._ssid = ssid
        self._key = key

    def disconnect(self):
        self._ssid = None

    def _refused(self):
        """STAT_NO_AP_FOUND / STAT_WRONG_PASSWORD for a station whose network is not in reach
        as given (vdevice.json "wifi"), else None."""
        air = _control().get("wifi")
        if self.kind != "sta" or self._ssid is None or not isinstance(air, dict):
            return None
        if self._ssid not in air:
            return STAT_NO_AP_FOUND
        return None if air[self._ssid] == (self._key or "") else STAT_WRONG_PASSWORD

    def isconnected(self):
        if not self._active or not link_up():
            return False
        return self.kind != "sta" or (self._ssid is not None and self._refused() is None)

    def status(self, param=None):
        if self.kind == "lan":
            return ETH_GOT_IP if self.isconnected() else ETH_DISCONNECTED
        if self.isconnected():
            return STAT_GOT_IP
        return self._refused() or STAT_CONNECTING

    def ifconfig(self, config=None):
        if not self.isconnected():
            return NONE
        ip = _control().get("ip")  # a test's new DHCP lease
        return (ip,) + ADDRESS[1:] if ip else ADDRESS

    def ipconfig(self, key=None, **kw):
        if key == "addr4":
            return self.ifconfig()[:2]
        raise ValueError("unknown config param")

    def config(self, *args, **kw):
        if kw:
            self._config.update(kw)
            return None
        return self._config.get(args[0]) if args else None


class WLAN(_Nic):
    IF_STA = STA_IF
    IF_AP = AP_IF

    def __init__(self, interface_id=STA_IF):
        super().__init__("sta" if interface_id == STA_IF else "ap")


def LAN(**kw):
    """network.LAN(mdc=, mdio=, phy_type=, phy_addr=, ...): the pins are accepted and unused."""
    return _Nic("lan")
