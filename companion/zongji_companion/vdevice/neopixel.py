"""neopixel for the virtual device: an addressable LED strip that keeps its colours."""


class NeoPixel:
    def __init__(self, pin, n, bpp=3, timing=1):
        self.pin = pin
        self.n = n
        self.pixels = [(0, 0, 0)] * n
        self.writes = 0

    def __len__(self):
        return self.n

    def __setitem__(self, i, colour):
        self.pixels[i] = colour

    def __getitem__(self, i):
        return self.pixels[i]

    def fill(self, colour):
        self.pixels = [colour] * self.n

    def write(self):
        self.writes += 1
