"""The device's UDP socket, alike on every MicroPython port.

    udp = Udp("0.0.0.0", 5060)      bound, non-blocking (OSError when the port is taken)
    got = udp.recv()                (data, (ip, port)), or None when nothing is waiting
    udp.send(data, (ip, port))      OSError when it cannot be sent (no route, or closed)
    await readable(udp.sock)        until a datagram waits, through asyncio's own poller
    udp.close()                     the link is down: closed, udp.sock None; a task waiting in
                                    readable() wakes; recv() gives None, send() OSError
    udp.open()                      the link is back: bound again (OSError when it can't be)

The ESP32 (lwip) takes and gives (ip, port) tuples; the unix port takes and gives raw sockaddr
bytes (socket.sockaddr() decodes them, getaddrinfo() makes them, cached per peer).
"""

import gc
import socket
from asyncio import core  # type: ignore[attr-defined]  # MicroPython's own asyncio internals

# One Ethernet or Wi-Fi frame: 1,472 B of UDP payload over IPv4. The ESP32's lwIP reassembles no
# IP fragments (ESP-IDF's CONFIG_LWIP_IP4_REASSEMBLY is off by default, and MicroPython's esp32
# sdkconfig leaves it off), so a larger SIP datagram never reaches a board; RFC 3261 18.1.1 keeps
# UDP requests under 1,300 B for that reason. recvfrom(n) takes n free bytes in one block for
# every datagram: 4 KB could not be found in a fragmented no-PSRAM heap with 40 KB free.
MAX_DATAGRAM = 1500


class Udp:
    """One non-blocking UDP socket, with (ip, port) addresses on every port."""

    def __init__(self, bind, port):
        self.bind = (bind, port)
        self.sock = None
        self.raw = False  # the unix port: sockaddr bytes (set by open)
        self._raw_cache = {}
        self.dropped = 0  # datagrams read and dropped for want of a free block (recv)
        self.oversized = 0  # datagrams over MAX_DATAGRAM, dropped as a board's lwIP drops them
        self.open()

    def open(self):
        """Bind (again, after close()): OSError when the port is taken."""
        info = socket.getaddrinfo(self.bind[0], self.bind[1])[0]
        sock = socket.socket(info[0], socket.SOCK_DGRAM)
        self.raw = not isinstance(info[-1], tuple)
        try:
            sock.bind(info[-1])
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock = sock

    def recv(self):
        """(data, (ip, port)), or None when nothing is waiting. recvfrom needs one free block
        of MAX_DATAGRAM bytes; in a fragmented heap it may find none even after a collection.
        The datagram is then read with a 1-byte buffer, which drops it (UDP discards the rest):
        left in the socket, it would keep the socket readable and the loop spinning on it."""
        if self.sock is None:  # closed while the link is down
            return None
        try:
            data, addr = self.sock.recvfrom(MAX_DATAGRAM + 1)
        except OSError:  # EAGAIN: nothing more; anything else (an ICMP error): nothing either
            return None
        except MemoryError:
            gc.collect()
            try:
                data, addr = self.sock.recvfrom(MAX_DATAGRAM + 1)
            except MemoryError:
                self.dropped += 1
                try:
                    self.sock.recv(1)
                except (OSError, MemoryError):
                    pass
                raise
            except OSError:
                return None
        if len(data) > MAX_DATAGRAM:  # more than a frame: a board never sees it (above)
            self.oversized += 1
            return None
        if self.raw:
            family, ip, port = socket.sockaddr(addr)
            addr = (socket.inet_ntop(family, ip), port)
        return data, addr

    def send(self, data, addr):
        if self.sock is None:
            raise OSError(113)  # EHOSTUNREACH, as lwIP says while the interface is down
        if self.raw:
            raw = self._raw_cache.get(addr)
            if raw is None:
                if len(self._raw_cache) >= 64:
                    self._raw_cache = {}
                raw = self._raw_cache[addr] = socket.getaddrinfo(addr[0], addr[1])[0][-1]
            addr = raw
        self.sock.sendto(data, addr)

    def close(self):
        sock, self.sock = self.sock, None
        if sock is None:
            return
        # a task waiting in readable(sock) is woken as an error on the socket would wake it
        # (asyncio's IOQueue.wait_io_event): off the poller first, then closed
        q = core._io_queue
        waiting = q.map.get(id(sock))
        if waiting is not None:
            q._dequeue(sock)
            for task in waiting[:2]:
                if task is not None:
                    core._task_queue.push(task)
        sock.close()


def readable(sock):
    yield core._io_queue.queue_read(sock)
