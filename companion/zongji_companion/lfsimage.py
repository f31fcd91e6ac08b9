"""A littlefs filesystem image as MicroPython's esp32 port mounts it, built with littlefs-python.

    data = build({"main.py": b"...", "zongji/x.mpy": b"..."}, size)   the partition's bytes
    files = read(data)                                                {path: bytes} read back
    used = used_bytes(data)                                           blocks in use x block size

The geometry is MicroPython's: the esp32 port's flash partition has 4096-byte blocks
(ports/esp32/esp32_partition.c), and vfs.VfsLfs2 (extmod/vfs_lfs.c, vfs_lfsx.c) formats and
mounts with readsize 32, progsize 32, lookahead 32 bytes, block_cycles 100, a cache of
min(block size, 4 x max(read, prog)) = 128 bytes, the default name_max (255) and littlefs's own
on-disk version 2.1 (LFS2_DISK_VERSION of MicroPython's lib/littlefs, LFS2_MULTIVERSION unset).
A mismatch in block size or count makes MicroPython's mount fail and its boot format the
partition empty (modules/_boot.py, inisetup.py), so block_count is the partition's size / 4096.
"""

BLOCK = 4096
GEOMETRY = {
    "block_size": BLOCK,
    "read_size": 32,
    "prog_size": 32,
    "lookahead_size": 32,
    "block_cycles": 100,
    "cache_size": 128,
    "name_max": 255,
    "disk_version": 0x00020001,
}


class FsError(Exception):
    """str(e): what did not fit or could not be read."""


def _fs(block_count, mount=True, data=None):
    from littlefs import LittleFS

    fs = LittleFS(block_count=block_count, mount=False, **GEOMETRY)
    if data is not None:
        fs.context.buffer = bytearray(data)
    if mount:
        fs.mount()
    return fs


def build(files, size):
    """The partition (`size` bytes, a whole number of blocks) holding `files` {device path: bytes}.
    FsError when they do not fit, saying by how much."""
    from littlefs import errors

    if size % BLOCK or size < 2 * BLOCK:
        raise FsError("a littlefs partition is whole %d-byte blocks (at least 2), not %d bytes" % (BLOCK, size))
    fs = _fs(size // BLOCK, mount=False)
    fs.format()
    fs.mount()
    try:
        for path in sorted(files):
            parent = path.rsplit("/", 1)[0] if "/" in path else ""
            if parent:
                fs.makedirs(parent, exist_ok=True)
            with fs.open(path, "wb") as f:
                f.write(bytes(files[path]))
    except errors.LittleFSError as e:
        if e.code == errors.LittleFSError.Error.LFS_ERR_NOSPC:
            need = sum(-(-len(b) // BLOCK) * BLOCK for b in files.values())
            raise FsError("the files (%d, about %d KB in whole blocks) do not fit the %d KB partition"
                          % (len(files), need // 1024, size // 1024)) from None  # fmt: skip
        raise FsError("littlefs: %s" % e) from None
    fs.unmount()
    return bytes(fs.context.buffer)


def read(data):
    """{path: bytes} of every file in a partition built for MicroPython (FsError if it does not mount)."""
    from littlefs import errors

    if len(data) % BLOCK:
        raise FsError("%d bytes is not a whole number of %d-byte blocks" % (len(data), BLOCK))
    try:
        fs = _fs(len(data) // BLOCK, data=data)
    except errors.LittleFSError as e:
        raise FsError("the partition does not mount as littlefs (%s)" % e) from None
    out = {}
    for root, _dirs, names in fs.walk("/"):
        for name in names:
            path = (root.rstrip("/") + "/" + name).lstrip("/")
            with fs.open(path, "rb") as f:
                out[path] = f.read()
    return out


def used_bytes(data):
    """How much of the partition littlefs has in use (its used blocks x the block size)."""
    fs = _fs(len(data) // BLOCK, data=data)
    return fs.used_block_count * BLOCK
