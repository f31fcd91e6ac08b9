# The serial admin's read loop on the unix port: µs a byte for SerialAdmin.read() (poll and a
# 1-byte readinto per byte, as on a board) and for decoding frames (Endpoint.receive).
#   head -c 200000 /dev/urandom > /tmp/rnd.bin
#   MICROPYPATH=firmware:.frozen .venv/bin/micropython bench/mpy/serial_read.py < /tmp/rnd.bin
import sys
import time

from zongji.shell.admin_serial import SerialAdmin


class _Device:
    class admin:
        max_bundle_body = 262144
        max_prompt = 262144


s = SerialAdmin(_Device(), sys.stdin.buffer, sys.stdout.buffer)
t = time.ticks_us()
n = 0
while n < 200000:
    d = s.read()
    if not d:
        break
    n += len(d)
dt = time.ticks_diff(time.ticks_us(), t)
frame = b"\xc0" + b"x" * 128 + b"\xc0"
t = time.ticks_us()
for _i in range(0, n, 130):
    s.ep.receive(frame, 0)
dt2 = time.ticks_diff(time.ticks_us(), t)
print("read %d B: %.2f us/B; decode %.3f us/B" % (n, dt / n, dt2 / n))
