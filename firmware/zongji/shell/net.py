"""The device's network: Ethernet, Wi-Fi station, or a fallback access point for first setup.

    net = Net(config, network, machine, log)   config: the device config (config.json)
    net.start(now)                  brings the interface up (does not wait)
    changed = net.poll(now)         call about once a second: joins, retries, watches the link;
                                    True when net.ip changed (DHCP gave another address, the
                                    link went down or came back)
    net.ip                          the address phones reach us on, or None while down
    net.mode                        "lan", "wifi" or "ap"
    net.problem                     why Wi-Fi does not join, as the radio reports it ("wrong
                                    password", "no such network"), or None

Which interface: a board with an Ethernet PHY (config "lan", copied from the board file) uses
network.LAN; otherwise Wi-Fi station when config "wifi" names an SSID; with neither, an open
access point "zongji-XXXXXX" (the last bytes of machine.unique_id()) at 192.168.4.1, so an
installer can reach a fresh board. A join that does not succeed within JOIN_MS is abandoned
and tried again after a back-off (2 s, doubling, at most 60 s). The address is re-read on
every poll: DHCP can change it, and the shell re-advertises it.
"""

JOIN_MS = 20000
# network.WLAN.status() codes (ESP32 port names) -> what the installer is told
WHY = (("STAT_WRONG_PASSWORD", "wrong password"), ("STAT_NO_AP_FOUND", "no such network"),
       ("STAT_ASSOC_FAIL", "the access point refused to associate"),
       ("STAT_HANDSHAKE_TIMEOUT", "no answer to the handshake (wrong password?)"),
       ("STAT_BEACON_TIMEOUT", "the access point went out of reach"))  # fmt: skip
BACKOFF_MS = 2000
BACKOFF_MAX_MS = 60000


def _addr(nic):
    try:
        return nic.ipconfig("addr4")[0]
    except (AttributeError, ValueError, OSError, TypeError):
        return nic.ifconfig()[0]


class Net:
    def __init__(self, config, network, machine=None, log=print, error=None):
        self.config = config
        self.network = network
        self.machine = machine
        self.log = log
        self.error = error or log  # the problems: the device keeps them for its status
        self.nic = None
        self.mode = None
        self.ip = None
        self.problem = None
        self._joining_since = None
        self._retry_at = 0
        self._backoff = BACKOFF_MS

    def start(self, now):
        network = self.network
        lan = self.config.get("lan")
        wifi = self.config.get("wifi") or {}
        if lan:
            self.mode = "lan"
            self.nic = self._lan(lan)
            self.nic.active(True)
        elif wifi.get("ssid"):
            self.mode = "wifi"
            self.nic = network.WLAN(_iface(network, "IF_STA", "STA_IF"))
            self.nic.active(True)
            self._join(now)
        else:
            self.mode = "ap"
            self.nic = network.WLAN(_iface(network, "IF_AP", "AP_IF"))
            self.nic.active(True)
            essid = "zongji-" + _hex(self.machine.unique_id()[-3:]) if self.machine else "zongji"
            try:
                self.nic.config(essid=essid)
            except (OSError, ValueError, TypeError):
                pass
            self.log("no network configured: access point %s (open) for setup" % essid)

    def _lan(self, lan):
        network = self.network
        Pin = self.machine.Pin
        kw = {"mdc": Pin(lan["mdc"]), "mdio": Pin(lan["mdio"]), "phy_addr": lan.get("phy_addr", 0)}
        kw["phy_type"] = getattr(network, "PHY_" + lan.get("phy", "LAN8720"))
        if lan.get("power") is not None:
            kw["power"] = Pin(lan["power"])
        if lan.get("ref_clk") is not None:
            kw["ref_clk"] = Pin(lan["ref_clk"])
            kw["ref_clk_mode"] = Pin.IN if lan.get("ref_clk_mode", "in") == "in" else Pin.OUT
        return network.LAN(**kw)

    def _join(self, now):
        wifi = self.config["wifi"]
        self.log("wifi: joining %s" % wifi["ssid"])  # never the password
        try:
            self.nic.connect(wifi["ssid"], wifi.get("password") or "")
        except OSError as e:
            self.error("wifi: %s" % e)
        self._joining_since = now

    def _connected(self):
        if self.mode == "ap":
            return self.nic.active()
        if self.mode == "lan":
            try:
                return self.nic.isconnected() and self.nic.status() == self.network.ETH_GOT_IP
            except AttributeError:
                return self.nic.isconnected()
        return self.nic.isconnected()

    def poll(self, now):
        if self.nic is None:
            return False
        ip = None
        if self._connected():
            ip = _addr(self.nic)
            if ip == "0.0.0.0":
                ip = None
        if ip is not None:
            self._joining_since = None
            self._backoff = BACKOFF_MS
            self.problem = None
        elif self.mode == "wifi":
            self._why()
            self._retry_wifi(now)
        if ip == self.ip:
            return False
        old, self.ip = self.ip, ip
        if ip is None:
            self.error("%s: link down (was %s)" % (self.mode, old))
        elif old is None:
            self.log("%s: up, address %s" % (self.mode, ip))
        else:
            self.log("%s: address changed %s -> %s" % (self.mode, old, ip))
        return True

    def _why(self):
        """What the radio says about a join that is not working, once per change."""
        try:
            code = self.nic.status()
        except (OSError, AttributeError, TypeError):
            return
        for name, text in WHY:
            if code == getattr(self.network, name, None):
                if text != self.problem:
                    self.problem = text
                    self.error("wifi: %s: %s" % (self.config["wifi"]["ssid"], text))
                return

    def _retry_wifi(self, now):
        if self._joining_since is None:  # was up and dropped, or waiting for the next try
            if now >= self._retry_at:
                self._join(now)
            return
        if now - self._joining_since < JOIN_MS:
            return
        self.error("wifi: no connection after %d s; next try in %d s" % (JOIN_MS // 1000, self._backoff // 1000))
        try:
            self.nic.disconnect()
        except OSError:
            pass
        self._joining_since = None
        self._retry_at = now + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_MS)


def _iface(network, new, old):
    wlan = network.WLAN
    return getattr(wlan, new) if hasattr(wlan, new) else getattr(network, old)


def _hex(data):
    return "".join("%02x" % b for b in data)
