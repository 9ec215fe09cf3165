"""tally_frame.py — a pure-Python (stdlib) writer of Tally's native ingest
frame and reader of the binary query response (docs/api.md, "Native API"),
for the integration tests. Includes XXH3-64 (seed 0, default secret), the
frame's checksum, and a literal-only LZ4 block writer (valid LZ4 that does
not compress) so the compressed path can be exercised without the lz4
module.
"""

import struct

M64 = (1 << 64) - 1
P32_1, P32_2, P32_3 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D
P64_1, P64_2, P64_3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
P64_4, P64_5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5
PMX1, PMX2 = 0x165667919E3779F9, 0x9FB21C651E98DF25
SECRET = bytes([
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
])


def _r64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def _r32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _fold(a, b):
    p = a * b
    return (p & M64) ^ (p >> 64)


def _avalanche(h):
    h ^= h >> 37
    h = (h * PMX1) & M64
    return h ^ (h >> 32)


def _xxh64_avalanche(h):
    h ^= h >> 33
    h = (h * P64_2) & M64
    h ^= h >> 29
    h = (h * P64_3) & M64
    return h ^ (h >> 32)


def _rrmxmx(h, n):
    h ^= _rotl(h, 49) ^ _rotl(h, 24)
    h = (h * PMX2) & M64
    h ^= (h >> 35) + n
    h = (h * PMX2) & M64
    return h ^ (h >> 28)


def _mix16(b, o, so):
    return _fold(_r64(b, o) ^ _r64(SECRET, so), _r64(b, o + 8) ^ _r64(SECRET, so + 8))


def xxh3_64(data):
    b = bytes(data)
    n = len(b)
    if n == 0:
        return _xxh64_avalanche(_r64(SECRET, 56) ^ _r64(SECRET, 64))
    if n <= 3:
        c = (b[0] << 16) | (b[n >> 1] << 24) | b[n - 1] | (n << 8)
        return _xxh64_avalanche(c ^ (_r32(SECRET, 0) ^ _r32(SECRET, 4)))
    if n <= 8:
        v = (_r32(b, n - 4) + (_r32(b, 0) << 32)) & M64
        return _rrmxmx(v ^ (_r64(SECRET, 8) ^ _r64(SECRET, 16)), n)
    if n <= 16:
        lo = _r64(b, 0) ^ (_r64(SECRET, 24) ^ _r64(SECRET, 32))
        hi = _r64(b, n - 8) ^ (_r64(SECRET, 40) ^ _r64(SECRET, 48))
        swapped = int.from_bytes(lo.to_bytes(8, "little"), "big")
        return _avalanche((n + swapped + hi + _fold(lo, hi)) & M64)
    if n <= 128:
        acc = (n * P64_1) & M64
        if n > 32:
            if n > 64:
                if n > 96:
                    acc += _mix16(b, 48, 96) + _mix16(b, n - 64, 112)
                acc += _mix16(b, 32, 64) + _mix16(b, n - 48, 80)
            acc += _mix16(b, 16, 32) + _mix16(b, n - 32, 48)
        acc += _mix16(b, 0, 0) + _mix16(b, n - 16, 16)
        return _avalanche(acc & M64)
    if n <= 240:
        acc = (n * P64_1) & M64
        for i in range(8):
            acc += _mix16(b, 16 * i, 16 * i)
        acc = _avalanche(acc & M64)
        end = _mix16(b, n - 16, 136 - 17)
        for i in range(8, n // 16):
            end += _mix16(b, 16 * i, 16 * (i - 8) + 3)
        return _avalanche((acc + end) & M64)
    acc = [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1]

    def stripe(o, so):
        for i in range(8):
            v = _r64(b, o + 8 * i)
            k = v ^ _r64(SECRET, so + 8 * i)
            acc[i ^ 1] = (acc[i ^ 1] + v) & M64
            acc[i] = (acc[i] + (k & 0xFFFFFFFF) * (k >> 32)) & M64

    per_block = (len(SECRET) - 64) // 8
    block = 64 * per_block
    nb = (n - 1) // block
    for blk in range(nb):
        for s in range(per_block):
            stripe(blk * block + 64 * s, 8 * s)
        for i in range(8):
            a = acc[i]
            a ^= a >> 47
            a ^= _r64(SECRET, len(SECRET) - 64 + 8 * i)
            acc[i] = (a * P32_1) & M64
    for s in range(((n - 1) - block * nb) // 64):
        stripe(nb * block + 64 * s, 8 * s)
    stripe(n - 64, len(SECRET) - 64 - 7)
    r = (n * P64_1) & M64
    for i in range(4):
        r += _fold(acc[2 * i] ^ _r64(SECRET, 11 + 16 * i), acc[2 * i + 1] ^ _r64(SECRET, 11 + 16 * i + 8))
    return _avalanche(r & M64)


def lz4_literals(raw):
    """One LZ4 block holding raw as literals only (valid, not smaller)."""
    n = len(raw)
    out = bytearray()
    if n < 15:
        out.append(n << 4)
    else:
        out.append(0xF0)
        rest = n - 15
        while rest >= 255:
            out.append(255)
            rest -= 255
        out.append(rest)
    out += raw
    return bytes(out)


def encode_frame(series, lz4=False, version=1):
    """series: list of (run_id, key, points) with points a list of
    (step, timestamp_ms, value). Returns the frame bytes."""
    raw = bytearray()
    n_points = 0
    for run_id, key, pts in series:
        r = run_id.encode() if isinstance(run_id, str) else bytes(run_id)
        k = key.encode() if isinstance(key, str) else bytes(key)
        raw += struct.pack("<HHI", len(r), len(k), len(pts)) + r + k
        raw += b"\0" * ((8 - len(raw) % 8) % 8)
        raw += struct.pack("<%dq" % len(pts), *[p[0] for p in pts])
        raw += struct.pack("<%dq" % len(pts), *[p[1] for p in pts])
        raw += struct.pack("<%dd" % len(pts), *[p[2] for p in pts])
        n_points += len(pts)
    payload = lz4_literals(bytes(raw)) if lz4 else bytes(raw)
    hdr = b"TLYF" + struct.pack("<HHIIIIQ", version, 1 if lz4 else 0, len(series), n_points,
                                len(payload), len(raw), xxh3_64(payload))
    return hdr + payload


def decode_query_binary(data):
    """The binary query response: dict with method, x_axis, width and a list
    of series dicts (n_source, x_lo, x_hi and the columns)."""
    assert data[:4] == b"TLYQ", data[:4]
    version, _, method, axis, n_series, width = struct.unpack_from("<BBBBII", data, 4)
    assert version == 1
    off = 16
    out = []
    for _ in range(n_series):
        n, _pad, n_source, x_lo, x_hi = struct.unpack_from("<IIQqq", data, off)
        off += 32
        cols = ["x_lo", "x_hi", "count", "n_nan", "min", "max", "mean"] if method == 2 else ["x", "y"]
        s = {"n": n, "n_source": n_source, "x_lo": x_lo, "x_hi": x_hi}
        for c in cols:
            s[c] = list(struct.unpack_from("<%dd" % n, data, off))
            off += 8 * n
        out.append(s)
    assert off == len(data), (off, len(data))
    return {"method": method, "x_axis": axis, "width": width, "series": out}
