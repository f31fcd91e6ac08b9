"""The device's UDP socket, alike on every MicroPython port.

    udp = Udp("0.0.0.0", 5060)      bound, non-blocking (OSError when the port is taken)
    got = udp.recv()                (data, (ip, port)), or None when nothing is waiting
    udp.send(data, (ip, port))      OSError when it cannot be sent (no route)
    await readable(udp.sock)        until a datagram waits, through asyncio's own poller

The ESP32 (lwip) takes and gives (ip, port) tuples; the unix port takes and gives raw sockaddr
bytes (socket.sockaddr() decodes them, getaddrinfo() makes them, cached per peer).
"""

import gc
import socket
from asyncio import core  # type: ignore[attr-defined]  # MicroPython's own asyncio internals

MAX_DATAGRAM = 4096


class Udp:
    """One non-blocking UDP socket, with (ip, port) addresses on every port."""

    def __init__(self, bind, port):
        info = socket.getaddrinfo(bind, port)[0]
        self.sock = socket.socket(info[0], socket.SOCK_DGRAM)
        self.raw = not isinstance(info[-1], tuple)  # the unix port: sockaddr bytes
        self._raw_cache = {}
        self.dropped = 0  # datagrams read and dropped for want of a free block (recv)
        try:
            self.sock.bind(info[-1])
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def recv(self):
        """(data, (ip, port)), or None when nothing is waiting. recvfrom needs one free block
        of MAX_DATAGRAM bytes; in a fragmented heap it may find none even after a collection.
        The datagram is then read with a 1-byte buffer, which drops it (UDP discards the rest):
        left in the socket, it would keep the socket readable and the loop spinning on it."""
        try:
            data, addr = self.sock.recvfrom(MAX_DATAGRAM)
        except OSError:  # EAGAIN: nothing more; anything else (an ICMP error): nothing either
            return None
        except MemoryError:
            gc.collect()
            try:
                data, addr = self.sock.recvfrom(MAX_DATAGRAM)
            except MemoryError:
                self.dropped += 1
                try:
                    self.sock.recv(1)
                except (OSError, MemoryError):
                    pass
                raise
            except OSError:
                return None
        if self.raw:
            family, ip, port = socket.sockaddr(addr)
            addr = (socket.inet_ntop(family, ip), port)
        return data, addr

    def send(self, data, addr):
        if self.raw:
            raw = self._raw_cache.get(addr)
            if raw is None:
                if len(self._raw_cache) >= 64:
                    self._raw_cache = {}
                raw = self._raw_cache[addr] = socket.getaddrinfo(addr[0], addr[1])[0][-1]
            addr = raw
        self.sock.sendto(data, addr)

    def close(self):
        self.sock.close()


def readable(sock):
    yield core._io_queue.queue_read(sock)
