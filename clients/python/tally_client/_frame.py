"""_frame.py — encodes Tally's native ingest frame (docs/api.md, "Native
API", frame version 1) from per-series columns.

The checksum is CRC-32 (frame flag bit 1): zlib.crc32 runs in C and releases
the GIL on large buffers, where XXH3 would have to be pure Python. Columns are
array('q') / array('d'), little-endian on the wire (byte-swapped on a
big-endian host), each record padded so its columns start 8-byte aligned.

Invariants:
  (1) encode() output is one complete frame: header n_series / n_points /
      lengths / checksum agree with the payload.
  (2) Series with zero points are not written.
"""

import struct
import sys
import zlib

MAGIC = b"TLYF"
VERSION = 1
FLAG_CRC32 = 0x0002
HEADER = struct.Struct("<4sHHIIIIQ")
RECORD = struct.Struct("<HHI")
_PAD = b"\0" * 8
_SWAP = sys.byteorder != "little"

# Largest raw payload we put in one frame: well under the server's default
# 32 MiB body limit, so frames are never refused for their size.
MAX_FRAME_BYTES = 8 << 20
BYTES_PER_POINT = 24


def _column(arr):
    if _SWAP:
        arr = type(arr)(arr.typecode, arr)
        arr.byteswap()
    return arr.tobytes()


def encode(records):
    """records: iterable of (run_id_bytes, key_bytes, steps, timestamps,
    values) with equal-length array columns. Returns the frame as bytes."""
    parts = []
    n_series = 0
    n_points = 0
    for run_id, key, steps, ts, vals in records:
        n = len(vals)
        if n == 0:
            continue
        head = RECORD.pack(len(run_id), len(key), n) + run_id + key
        pad = (-len(head)) & 7
        parts.append(head)
        if pad:
            parts.append(_PAD[:pad])
        parts.append(_column(steps))
        parts.append(_column(ts))
        parts.append(_column(vals))
        n_series += 1
        n_points += n
    payload = b"".join(parts)
    crc = zlib.crc32(payload)
    header = HEADER.pack(MAGIC, VERSION, FLAG_CRC32, n_series, n_points, len(payload),
                         len(payload), crc)
    return header + payload
