#!/usr/bin/env python3
"""Independent reader for the schedrec `.sched` trace format, version 1.x.

Written from format-spec/SPEC.md and the golden vectors only (no Rust source).
Python 3.11 standard library only; zstd (codec 1) is supported only when the
third-party `zstandard` module happens to be importable.

Usage:
    python3 schedrec_reader.py FILE.sched            JSON lines on stdout
    python3 schedrec_reader.py --info FILE.sched     short summary
    python3 schedrec_reader.py --selftest VECTORS    check every vector
"""

import json
import os
import struct
import sys

SUPPORTED_MAJOR = 1
KNOWN_MINOR = 0

FILE_MAGIC = b"\x89SCHED\r\n"
CHUNK_MAGIC = b"SRCK"
INDEX_MAGIC = b"SRIX"
TRAILER_MAGIC = b"\x89SCHEND\n"

MAX_META_LEN = 1 << 20
MAX_RAW_LEN = 1 << 28
MAX_STORED_LEN = 1 << 29
CHUNK_HEADER_LEN = 56
INDEX_ENTRY_LEN = 40
TRAILER_LEN = 16

U64_MASK = (1 << 64) - 1


class SchedError(Exception):
    """Any reason a file (or part of it) cannot be read."""


class CodecUnavailable(SchedError):
    """A chunk uses zstd but the `zstandard` module is not installed."""


# ---------------------------------------------------------------------------
# CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, table driven.

def _make_crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


# ---------------------------------------------------------------------------
# §2.1 ULEB128 and §2.2 zig-zag.

def read_uleb(buf, pos, end):
    """Decode one uleb in buf[pos:end]; return (value, new_pos)."""
    result = 0
    shift = 0
    for i in range(10):
        if pos >= end:
            raise SchedError("uleb128 value runs past the end of its column")
        b = buf[pos]
        pos += 1
        if i == 9 and b > 1:
            raise SchedError("uleb128 value overflows 64 bits")
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    raise SchedError("uleb128 value longer than 10 bytes")


def unzz(z):
    """Zig-zag decode to a signed Python int in [-2^63, 2^63)."""
    return (z >> 1) ^ -(z & 1)


def to_i64(v):
    return v - (1 << 64) if v & (1 << 63) else v


# ---------------------------------------------------------------------------
# §2.3 bincode "standard" varint and the §3.2 metadata.

class _MetaReader:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def _take(self, n, what):
        if self.pos + n > len(self.buf):
            raise SchedError("metadata ends inside %s" % what)
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def varint(self, what, bits=64):
        tag = self._take(1, what)[0]
        if tag <= 250:
            v = tag
        elif tag == 0xFB:
            v = struct.unpack("<H", self._take(2, what))[0]
            if v < 251:
                raise SchedError("metadata %s: non-shortest varint" % what)
        elif tag == 0xFC:
            v = struct.unpack("<I", self._take(4, what))[0]
            if v < (1 << 16):
                raise SchedError("metadata %s: non-shortest varint" % what)
        elif tag == 0xFD:
            v = struct.unpack("<Q", self._take(8, what))[0]
            if v < (1 << 32):
                raise SchedError("metadata %s: non-shortest varint" % what)
        else:
            raise SchedError("metadata %s: invalid varint tag 0x%02X" % (what, tag))
        if v >> bits:
            raise SchedError("metadata %s: value %d does not fit u%d" % (what, v, bits))
        return v

    def u32(self, what):
        return self.varint(what, 32)

    def u64(self, what):
        return self.varint(what, 64)

    def boolean(self, what):
        b = self._take(1, what)[0]
        if b > 1:
            raise SchedError("metadata %s: invalid bool 0x%02X" % (what, b))
        return b == 1

    def string(self, what):
        n = self.varint(what + " length")
        raw = self._take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SchedError("metadata %s: not valid UTF-8" % what) from None

    def option(self, what, fn):
        tag = self._take(1, what)[0]
        if tag == 0:
            return None
        if tag == 1:
            return fn(what)
        raise SchedError("metadata %s: invalid option tag 0x%02X" % (what, tag))

    def list_of(self, what, fn):
        n = self.varint(what + " count")
        return [fn(what) for _ in range(n)]

    def enum(self, what, names):
        v = self.varint(what)
        if v >= len(names):
            raise SchedError("metadata %s: unknown enum value %d" % (what, v))
        return names[v]


HZ_SOURCES = ("unknown", "kernel_config", "inferred", "given")
PELT_MODES = ("off", "switch", "full")
UTIL_EST_LAYOUTS = ("unknown", "single", "enqueued_ewma")


def decode_metadata(buf):
    r = _MetaReader(buf)
    m = {}
    m["kernel_release"] = r.string("kernel_release")
    m["hostname"] = r.option("hostname", r.string)
    m["nr_cpus"] = r.u32("nr_cpus")
    m["cpu_capacity"] = r.list_of("cpu_capacity", r.u32)
    m["cpu_max_freq_khz"] = r.list_of("cpu_max_freq_khz", r.u32)
    m["hz"] = r.u32("hz")
    m["hz_source"] = r.enum("hz_source", HZ_SOURCES)
    m["clock_id"] = r.u32("clock_id")
    m["anchor_clock_ns"] = r.u64("anchor_clock_ns")
    m["anchor_realtime_ns"] = r.u64("anchor_realtime_ns")
    m["recorder"] = r.string("recorder")
    m["command_line"] = r.list_of("command_line", r.string)

    def counter_info(what):
        return {"name": r.string(what + " name"),
                "available": r.boolean(what + " available")}

    m["counters"] = r.list_of("counters", counter_info)
    m["pelt"] = r.enum("pelt", PELT_MODES)
    m["util_est_layout"] = r.enum("util_est_layout", UTIL_EST_LAYOUTS)

    def kv(what):
        return (r.string(what + " key"), r.string(what + " value"))

    m["extra"] = r.list_of("extra", kv)
    # §3.2: bytes after the last known field belong to later minor versions.
    m["_trailing_bytes"] = len(buf) - r.pos
    return m


# ---------------------------------------------------------------------------
# §3.1 file header.

def decode_header(data):
    n = len(data)
    if n < len(FILE_MAGIC):
        if FILE_MAGIC.startswith(bytes(data)) and n > 0:
            raise SchedError("truncated file header (%d bytes)" % n)
        raise SchedError("not a schedrec trace (bad magic)")
    if data[:8] != FILE_MAGIC:
        raise SchedError("not a schedrec trace (bad magic)")
    if n < 12:
        raise SchedError("truncated file header (%d bytes)" % n)
    major, minor = struct.unpack_from("<HH", data, 8)
    if major != SUPPORTED_MAJOR:
        raise SchedError("unsupported format version %d.%d (this reader supports "
                         "major version %d)" % (major, minor, SUPPORTED_MAJOR))
    if n < 20:
        raise SchedError("truncated file header (%d bytes)" % n)
    flags, meta_len = struct.unpack_from("<II", data, 12)
    if meta_len > MAX_META_LEN:
        raise SchedError("metadata block too large (%d bytes, limit %d)"
                         % (meta_len, MAX_META_LEN))
    end = 20 + meta_len
    if n < end + 4:
        raise SchedError("truncated file header (%d bytes, header needs %d)"
                         % (n, end + 4))
    (stored_crc,) = struct.unpack_from("<I", data, end)
    actual = crc32c(data[:end])
    if stored_crc != actual:
        raise SchedError("file header checksum mismatch (stored 0x%08X, computed 0x%08X)"
                         % (stored_crc, actual))
    if flags != 0:
        raise SchedError("unsupported header flags 0x%08X" % flags)
    meta = decode_metadata(bytes(data[20:end]))
    return {"major": major, "minor": minor, "flags": flags, "meta_len": meta_len,
            "metadata": meta, "start": end + 4}


# ---------------------------------------------------------------------------
# §6.1 chunk header.

_CHUNK_FMT = struct.Struct("<4sHBBIIIIQQQII")
assert _CHUNK_FMT.size == CHUNK_HEADER_LEN


def parse_chunk_header(data, off):
    """Return (header dict, None) when valid, (None, reason) otherwise."""
    if off + CHUNK_HEADER_LEN > len(data):
        return None, "truncated chunk header at offset %d" % off
    (magic, kind, codec, reserved, cpu, count, raw_len, stored_len, present,
     ts_min, ts_max, payload_crc, header_crc) = _CHUNK_FMT.unpack_from(data, off)
    if magic != CHUNK_MAGIC:
        return None, "no chunk magic at offset %d" % off
    actual = crc32c(data[off:off + 52])
    if actual != header_crc:
        return None, ("chunk header checksum mismatch at offset %d (stored 0x%08X, "
                      "computed 0x%08X)" % (off, header_crc, actual))
    if reserved != 0:
        return None, "chunk header at offset %d: reserved byte is %d" % (off, reserved)
    if raw_len > MAX_RAW_LEN:
        return None, "chunk header at offset %d: raw_len %d > 2^28" % (off, raw_len)
    if stored_len > MAX_STORED_LEN:
        return None, "chunk header at offset %d: stored_len %d > 2^29" % (off, stored_len)
    if count > raw_len:
        return None, "chunk header at offset %d: count %d > raw_len %d" % (off, count, raw_len)
    if ts_min > ts_max:
        return None, "chunk header at offset %d: ts_min > ts_max" % off
    if codec == 0 and stored_len != raw_len:
        return None, ("chunk header at offset %d: codec 0 with stored_len %d != raw_len %d"
                      % (off, stored_len, raw_len))
    return {"offset": off, "kind": kind, "codec": codec, "cpu": cpu, "count": count,
            "raw_len": raw_len, "stored_len": stored_len, "present": present,
            "ts_min": ts_min, "ts_max": ts_max, "payload_crc": payload_crc,
            "length": CHUNK_HEADER_LEN + stored_len}, None


# ---------------------------------------------------------------------------
# §7 / §8.1 footer, §8.2 scan.

def read_footer(data, start):
    """Return (list of chunk headers, None) or (None, reason)."""
    n = len(data)
    if n < start + TRAILER_LEN or data[n - 8:] != TRAILER_MAGIC:
        return None, "no trailer"
    (index_offset,) = struct.unpack_from("<Q", data, n - 16)
    if not (start <= index_offset and index_offset + 12 <= n - TRAILER_LEN):
        return None, "trailer index_offset %d out of range" % index_offset
    if data[index_offset:index_offset + 4] != INDEX_MAGIC:
        return None, "no SRIX at index_offset %d" % index_offset
    (entries,) = struct.unpack_from("<I", data, index_offset + 4)
    body_end = index_offset + 8 + INDEX_ENTRY_LEN * entries
    if body_end + 4 != n - TRAILER_LEN:
        return None, "index block size does not match its %d entries" % entries
    (index_crc,) = struct.unpack_from("<I", data, body_end)
    actual = crc32c(data[index_offset:body_end])
    if actual != index_crc:
        return None, ("index checksum mismatch (stored 0x%08X, computed 0x%08X)"
                      % (index_crc, actual))
    chunks = []
    expect = start
    for i in range(entries):
        e = index_offset + 8 + INDEX_ENTRY_LEN * i
        (c_off, kind, reserved, cpu, count, length, ts_min,
         ts_max) = struct.unpack_from("<QHHIIIQQ", data, e)
        if reserved != 0:
            return None, "index entry %d: reserved field is %d" % (i, reserved)
        if c_off != expect:
            return None, ("index entry %d: chunk offset %d, expected %d"
                          % (i, c_off, expect))
        hdr, why = parse_chunk_header(data, c_off)
        if hdr is None:
            return None, "index entry %d: %s" % (i, why)
        if (hdr["kind"], hdr["cpu"], hdr["count"], hdr["length"], hdr["ts_min"],
                hdr["ts_max"]) != (kind, cpu, count, length, ts_min, ts_max):
            return None, "index entry %d disagrees with the chunk header at %d" % (i, c_off)
        expect = c_off + hdr["length"]
        if expect > index_offset:
            return None, "index entry %d: chunk runs past the index" % i
        chunks.append(hdr)
    if expect != index_offset:
        return None, "last chunk ends at %d, index starts at %d" % (expect, index_offset)
    return chunks, None


def scan_chunks(data, start):
    """§8.2. Return (list of chunk headers, reason for stopping)."""
    chunks = []
    off = start
    n = len(data)
    while True:
        if off >= n:
            return chunks, "end of file at offset %d" % off
        if data[off:off + 4] == INDEX_MAGIC:
            return chunks, "reached index block (SRIX) at offset %d" % off
        hdr, why = parse_chunk_header(data, off)
        if hdr is None:
            return chunks, "stopped: " + why
        end = off + hdr["length"]
        if end > n:
            return chunks, ("stopped: chunk at offset %d needs %d payload bytes, file has %d"
                            % (off, hdr["stored_len"], n - off - CHUNK_HEADER_LEN))
        payload = data[off + CHUNK_HEADER_LEN:end]
        if crc32c(payload) != hdr["payload_crc"]:
            return chunks, "stopped: payload checksum mismatch in chunk at offset %d" % off
        hdr["_crc_ok"] = True
        chunks.append(hdr)
        off = end


# ---------------------------------------------------------------------------
# §5 kinds and their columns.  column = (name, type, coding)
# coding = (name, *referenced bits)

def _pelt_cols(base, prefix, key):
    """Avg group bits base..base+5 and sums group base+6..base+9 (§5.1 pattern)."""
    return {
        base + 0: (prefix + "runnable_avg", "u64", ("keyed", key)),
        base + 1: (prefix + "util_avg", "u64", ("keyed_rel", key, base)),
        base + 2: (prefix + "load_avg", "u64", ("keyed_rel", key, base)),
        base + 3: (prefix + "util_est", "u32", ("keyed", key)),
        base + 4: (prefix + "last_update_time", "u64", ("rel_delta", 0)),
        base + 5: (prefix + "pelt_flags", "u64", ("uv",)),
        base + 6: (prefix + "load_sum", "u64", ("keyed", key)),
        base + 7: (prefix + "runnable_sum", "u64", ("keyed", key)),
        base + 8: (prefix + "util_sum", "u64", ("keyed", key)),
        base + 9: (prefix + "period_contrib", "u32", ("uv",)),
    }


def _switch_kind():
    cols = {
        0: ("ts", "u64", ("delta_ts",)),
        1: ("next_pid", "u32", ("uv",)),
        2: ("next_tgid", "u32", ("keyed", 1)),
        3: ("next_prio", "i32", ("keyed", 1)),
        4: ("prev_pid", "u32", ("chain", 1)),
        5: ("prev_tgid", "u32", ("chain", 2)),
        6: ("prev_prio", "i32", ("chain", 3)),
        7: ("prev_state", "u32", ("uv",)),
        8: ("flags", "u64", ("uv",)),
    }
    groups = {}
    for k in range(4):
        b = 16 + 3 * k
        cols[b] = ("counter%d_enabled" % k, "u64", ("rel_slice",))
        cols[b + 1] = ("counter%d_value" % k, "u64", ("keyed_scaled", 4, b))
        cols[b + 2] = ("counter%d_running" % k, "u64", ("rel", b))
        groups["counter %d" % k] = (b, b + 1, b + 2)
    cols.update(_pelt_cols(32, "prev_", 4))
    cols.update(_pelt_cols(42, "next_", 1))
    groups["prev avg"] = tuple(range(32, 38))
    groups["prev sums"] = tuple(range(38, 42))
    groups["next avg"] = tuple(range(42, 48))
    groups["next sums"] = tuple(range(48, 52))
    return {"name": "switch", "cols": cols, "required": tuple(range(9)), "groups": groups}


def _wakeup_kind():
    cols = {
        0: ("ts", "u64", ("delta_ts",)),
        1: ("pid", "u32", ("uv",)),
        2: ("target_cpu", "u32", ("uv",)),
        3: ("flags", "u64", ("uv",)),
    }
    cols.update(_pelt_cols(8, "", 1))
    return {"name": "wakeup", "cols": cols, "required": (0, 1, 2, 3),
            "groups": {"avg": tuple(range(8, 14)), "sums": tuple(range(14, 18))}}


def _pelt_kind():
    cols = {
        0: ("ts", "u64", ("delta_ts",)),
        1: ("entity", "u64", ("uv",)),
        2: ("rq_cpu", "u32", ("uv",)),
        3: ("pid", "u32", ("uv",)),
    }
    cols.update(_pelt_cols(4, "", 3))
    return {"name": "pelt", "cols": cols, "required": tuple(range(10)),
            "groups": {"sums": tuple(range(10, 14))}}


def _simple_kind(name, spec):
    cols = {b: c for b, c in enumerate(spec)}
    return {"name": name, "cols": cols, "required": tuple(cols), "groups": {}}


KINDS = {
    1: _switch_kind(),
    2: _wakeup_kind(),
    3: _simple_kind("task", [
        ("ts", "u64", ("delta_ts",)),
        ("pid", "u32", ("uv",)),
        ("tgid", "u32", ("uv",)),
        ("ppid", "u32", ("uv",)),
        ("prio", "i32", ("sv",)),
        ("policy", "u32", ("uv",)),
        ("event", "u64", ("uv",)),
        ("comm", "bytes", ("bytes",)),
    ]),
    4: _simple_kind("migrate", [
        ("ts", "u64", ("delta_ts",)),
        ("pid", "u32", ("uv",)),
        ("orig_cpu", "u32", ("uv",)),
        ("dest_cpu", "u32", ("uv",)),
    ]),
    5: _pelt_kind(),
    6: _simple_kind("cpu_freq", [
        ("ts", "u64", ("delta_ts",)),
        ("target_cpu", "u32", ("uv",)),
        ("freq_khz", "u64", ("uv",)),
    ]),
    7: _simple_kind("loss", [
        ("ts", "u64", ("delta_ts",)),
        ("end_ts", "u64", ("rel", 0)),
        ("count", "u64", ("uv",)),
    ]),
    8: _simple_kind("marker", [
        ("ts", "u64", ("delta_ts",)),
        ("text", "bytes", ("bytes",)),
    ]),
}

KIND_ORDER = [KINDS[k]["name"] for k in sorted(KINDS)]


# ---------------------------------------------------------------------------
# §4 column codings, §6.2 payload.

def _decode_numbers(buf, pos, end, n):
    out = []
    for _ in range(n):
        v, pos = read_uleb(buf, pos, end)
        out.append(v)
    if pos != end:
        raise SchedError("column has %d bytes after its %d values" % (end - pos, n))
    return out


def _decode_bytes_column(buf, pos, end, n):
    out = []
    for _ in range(n):
        ln, pos = read_uleb(buf, pos, end)
        if pos + ln > end:
            raise SchedError("bytes value runs past the end of its column")
        out.append(bytes(buf[pos:pos + ln]))
        pos += ln
    if pos != end:
        raise SchedError("column has %d bytes after its %d values" % (end - pos, n))
    return out


def apply_coding(coding, e, cols, ts_min):
    """Invert a §4 coding. e: stored unsigned values; cols: decoded columns by bit."""
    name = coding[0]
    n = len(e)
    M = U64_MASK
    if name == "uv":
        return list(e)
    if name == "sv":
        return [unzz(x) & M for x in e]
    if name == "delta_ts":
        out, prev = [], ts_min
        for x in e:
            prev = (prev + unzz(x)) & M
            out.append(prev)
        return out
    if name == "keyed":
        K = cols[coding[1]]
        last, out = {}, []
        for i in range(n):
            v = (last.get(K[i], 0) + unzz(e[i])) & M
            last[K[i]] = v
            out.append(v)
        return out
    if name == "keyed_rel":
        K, O = cols[coding[1]], cols[coding[2]]
        last, out = {}, []
        for i in range(n):
            d = (last.get(K[i], 0) + unzz(e[i])) & M
            out.append((O[i] + d) & M)
            last[K[i]] = d
        return out
    if name == "keyed_scaled":
        K, O = cols[coding[1]], cols[coding[2]]
        lv, lo, out = {}, {}, []
        for i in range(n):
            k = K[i]
            pv, po = lv.get(k, 0), lo.get(k, 0)
            pred = pv if po == 0 else min((O[i] * pv) // po, M)
            v = (pred + unzz(e[i])) & M
            lv[k] = v
            lo[k] = O[i]
            out.append(v)
        return out
    if name == "chain":
        O = cols[coding[1]]
        return [((O[i - 1] if i > 0 else 0) + unzz(e[i])) & M for i in range(n)]
    if name == "rel":
        O = cols[coding[1]]
        return [(O[i] + unzz(e[i])) & M for i in range(n)]
    if name == "rel_delta":
        O = cols[coding[1]]
        d, out = 0, []
        for i in range(n):
            d = (d + unzz(e[i])) & M
            out.append((O[i] + d) & M)
        return out
    if name == "rel_slice":
        ts = cols[0]
        out = []
        for i in range(n):
            s = 0 if i == 0 else (ts[i] - ts[i - 1]) & M
            out.append((s + unzz(e[i])) & M)
        return out
    raise AssertionError(name)


def _check_type(typ, values, colname):
    if typ == "u32":
        for v in values:
            if v > 0xFFFFFFFF:
                raise SchedError("column %s: value %d outside u32" % (colname, v))
    elif typ == "i32":
        for v in values:
            if not (v < (1 << 31) or v >= (1 << 64) - (1 << 31)):
                raise SchedError("column %s: value %d outside i32" % (colname, to_i64(v)))


def _decompress(hdr, stored):
    codec = hdr["codec"]
    if codec == 0:
        return stored
    if codec == 1:
        try:
            import zstandard  # type: ignore
        except ImportError:
            raise CodecUnavailable(
                "chunk at offset %d uses zstd (codec 1) but the Python 'zstandard' "
                "module is not installed" % hdr["offset"]) from None
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(
                bytes(stored), read_across_frames=True)
            raw = reader.read(hdr["raw_len"] + 1)
        except zstandard.ZstdError as exc:
            raise SchedError("chunk at offset %d: zstd error: %s" % (hdr["offset"], exc)) from None
        if len(raw) != hdr["raw_len"]:
            raise SchedError("chunk at offset %d: payload decompresses to %s bytes, raw_len %d"
                             % (hdr["offset"], "more" if len(raw) > hdr["raw_len"] else len(raw),
                                hdr["raw_len"]))
        return raw
    raise SchedError("chunk at offset %d: unknown codec %d" % (hdr["offset"], codec))


def decode_chunk(data, hdr):
    """Return the chunk's records as a list of dicts (None for an unknown kind)."""
    off = hdr["offset"]
    stored = data[off + CHUNK_HEADER_LEN:off + hdr["length"]]
    if not hdr.get("_crc_ok"):
        actual = crc32c(stored)
        if actual != hdr["payload_crc"]:
            raise SchedError("chunk at offset %d: payload checksum mismatch (stored 0x%08X, "
                             "computed 0x%08X)" % (off, hdr["payload_crc"], actual))
    kind = KINDS.get(hdr["kind"])
    if kind is None:
        return None  # §5: unknown kinds are skipped
    raw = _decompress(hdr, stored)
    n = hdr["count"]
    present = hdr["present"]
    where = "chunk at offset %d (%s)" % (off, kind["name"])
    for b in kind["required"]:
        if not present >> b & 1:
            raise SchedError("%s: required column %d (%s) is absent"
                             % (where, b, kind["cols"][b][0]))
    for gname, bits in kind["groups"].items():
        have = [present >> b & 1 for b in bits]
        if any(have) and not all(have):
            raise SchedError("%s: group %r is only partly present" % (where, gname))
    cols = {}
    pos, end = 0, len(raw)
    try:
        for b in range(64):
            if not present >> b & 1:
                continue
            L, pos = read_uleb(raw, pos, end)
            if pos + L > end:
                raise SchedError("column %d length %d runs past the payload" % (b, L))
            cend = pos + L
            col = kind["cols"].get(b)
            if col is not None:
                name, typ, coding = col
                if typ == "bytes":
                    cols[b] = _decode_bytes_column(raw, pos, cend, n)
                else:
                    e = _decode_numbers(raw, pos, cend, n)
                    vals = apply_coding(coding, e, cols, hdr["ts_min"])
                    _check_type(typ, vals, name)
                    cols[b] = vals
            pos = cend  # columns unknown to this reader are skipped (§6.2)
        if pos != end:
            raise SchedError("%d bytes after the last column" % (end - pos))
    except SchedError as exc:
        raise SchedError("%s: %s" % (where, exc)) from None
    span = (min(cols[0]), max(cols[0])) if n else (0, 0)
    if span != (hdr["ts_min"], hdr["ts_max"]):
        raise SchedError("%s: timestamps span %d..%d, header says %d..%d"
                         % (where, span[0], span[1], hdr["ts_min"], hdr["ts_max"]))
    names = {b: kind["cols"][b][0] for b in cols}
    records = []
    for i in range(n):
        rec = {"_kind": kind["name"], "_cpu": hdr["cpu"]}
        for b, vals in cols.items():
            rec[names[b]] = vals[i]
        records.append(rec)
    return records


# ---------------------------------------------------------------------------
# Whole file.

class Trace:
    def __init__(self, header, chunks, complete, reason, records, skipped_kinds):
        self.header = header
        self.chunks = chunks
        self.complete = complete
        self.reason = reason
        self.records = records
        self.skipped_kinds = skipped_kinds


def read_trace(data):
    header = decode_header(data)
    start = header["start"]
    chunks, why = read_footer(data, start)
    if chunks is not None:
        complete, reason = True, None
    else:
        chunks, stop = scan_chunks(data, start)
        complete, reason = False, "%s; scan %s" % (why, stop)
    keyed = []
    skipped = {}
    for ci, hdr in enumerate(chunks):
        recs = decode_chunk(data, hdr)
        if recs is None:
            skipped[hdr["kind"]] = skipped.get(hdr["kind"], 0) + hdr["count"]
            continue
        for si, r in enumerate(recs):
            keyed.append((r["ts"], ci, si, r))
    # §8.3: by ts; ties by chunk position in the file, then stored order.
    keyed.sort(key=lambda t: t[:3])
    return Trace(header, chunks, complete, reason, [t[3] for t in keyed], skipped)


# ---------------------------------------------------------------------------
# JSON conversion (shape taken from vectors/*.jsonl).

TASK_EVENTS = {0: "seen", 1: "fork", 2: "exec", 3: "rename", 4: "exit"}
# SPEC.md Appendix B.
PELT_ENTITIES = {0: "task", 1: "cfs_rq", 2: "group_se"}


def _text(b):
    return b.decode("utf-8", errors="replace")


def _avg(r, p):
    if p + "runnable_avg" not in r:
        return None
    flags = r[p + "pelt_flags"]
    return {"util_avg": r[p + "util_avg"], "load_avg": r[p + "load_avg"],
            "runnable_avg": r[p + "runnable_avg"], "util_est": r[p + "util_est"],
            "last_update_time": r[p + "last_update_time"],
            "on_rq": bool(flags & 1), "sched_delayed": bool(flags & 2)}


def _sums(r, p):
    if p + "load_sum" not in r:
        return None
    return {"load_sum": r[p + "load_sum"], "runnable_sum": r[p + "runnable_sum"],
            "util_sum": r[p + "util_sum"], "period_contrib": r[p + "period_contrib"]}


def record_to_obj(r):
    kind = r["_kind"]
    o = {"kind": kind, "ts": r["ts"], "cpu": None if r["_cpu"] == 0xFFFFFFFF else r["_cpu"]}
    if kind == "switch":
        o["prev"] = {"pid": r["prev_pid"], "tgid": r["prev_tgid"], "prio": to_i64(r["prev_prio"])}
        o["prev_state"] = r["prev_state"]
        o["next"] = {"pid": r["next_pid"], "tgid": r["next_tgid"], "prio": to_i64(r["next_prio"])}
        o["preempt"] = bool(r["flags"] & 1)
        counters = []
        for k in range(4):
            if "counter%d_value" % k in r:
                counters.append({"value": r["counter%d_value" % k],
                                 "enabled": r["counter%d_enabled" % k],
                                 "running": r["counter%d_running" % k]})
            else:
                counters.append(None)
        o["counters"] = counters
        o["prev_pelt"] = _avg(r, "prev_")
        o["prev_sums"] = _sums(r, "prev_")
        o["next_pelt"] = _avg(r, "next_")
        o["next_sums"] = _sums(r, "next_")
    elif kind == "wakeup":
        o["pid"] = r["pid"]
        o["target_cpu"] = r["target_cpu"]
        o["new"] = bool(r["flags"] & 1)
        o["pelt"] = _avg(r, "")
        o["sums"] = _sums(r, "")
    elif kind == "task":
        for f in ("pid", "tgid", "ppid"):
            o[f] = r[f]
        o["prio"] = to_i64(r["prio"])
        o["policy"] = r["policy"]
        o["event"] = TASK_EVENTS.get(r["event"], {"other": r["event"]})
        o["comm"] = _text(r["comm"])
    elif kind == "migrate":
        for f in ("pid", "orig_cpu", "dest_cpu"):
            o[f] = r[f]
    elif kind == "pelt":
        o["entity"] = PELT_ENTITIES.get(r["entity"], {"other": r["entity"]})
        o["rq_cpu"] = r["rq_cpu"]
        o["pid"] = r["pid"]
        o["avg"] = _avg(r, "")
        o["sums"] = _sums(r, "")
    elif kind == "cpu_freq":
        o["target_cpu"] = r["target_cpu"]
        o["freq_khz"] = r["freq_khz"]
    elif kind == "loss":
        o["end_ts"] = r["end_ts"]
        o["count"] = r["count"]
    elif kind == "marker":
        o["text"] = _text(r["text"])
    return o


def record_to_json(r):
    return json.dumps(record_to_obj(r), ensure_ascii=False, separators=(",", ":"))


def trace_to_jsonl(trace):
    return "".join(record_to_json(r) + "\n" for r in trace.records)


# ---------------------------------------------------------------------------
# Command line.

def _read_file(path):
    with open(path, "rb") as f:
        return f.read()


def info_text(trace):
    h = trace.header
    m = h["metadata"]
    lines = ["version: %d.%d%s" % (h["major"], h["minor"],
                                   " (newer than this reader's 1.%d)" % KNOWN_MINOR
                                   if h["minor"] > KNOWN_MINOR else "")]
    if trace.complete:
        lines.append("status: complete")
    else:
        lines.append("status: recovered (%s)" % trace.reason)
    lines.append("host: %s, kernel %s, %d cpus, recorder %s"
                 % (m["hostname"], m["kernel_release"], m["nr_cpus"], m["recorder"]))
    lines.append("chunks: %d" % len(trace.chunks))
    counts = {}
    for r in trace.records:
        counts[r["_kind"]] = counts.get(r["_kind"], 0) + 1
    lines.append("records: %d" % len(trace.records))
    for name in KIND_ORDER:
        if name in counts:
            lines.append("  %s: %d" % (name, counts[name]))
    for k, c in sorted(trace.skipped_kinds.items()):
        lines.append("  unknown kind %d (skipped): %d" % (k, c))
    return "\n".join(lines) + "\n"


def selftest(vdir):
    names = sorted(f for f in os.listdir(vdir) if f.endswith(".sched"))
    passed = failed = skipped = 0
    for name in names:
        path = os.path.join(vdir, name)
        expected_path = path[:-len(".sched")] + ".jsonl"
        try:
            got = trace_to_jsonl(read_trace(_read_file(path))).encode("utf-8")
        except CodecUnavailable as exc:
            print("SKIP %s: %s" % (name, exc))
            skipped += 1
            continue
        except SchedError as exc:
            print("FAIL %s: %s" % (name, exc))
            failed += 1
            continue
        try:
            expected = _read_file(expected_path)
        except OSError as exc:
            print("FAIL %s: cannot read expected output: %s" % (name, exc))
            failed += 1
            continue
        if got == expected:
            print("PASS %s" % name)
            passed += 1
        else:
            gl, el = got.split(b"\n"), expected.split(b"\n")
            for i in range(max(len(gl), len(el))):
                g = gl[i] if i < len(gl) else b"<missing>"
                e = el[i] if i < len(el) else b"<missing>"
                if g != e:
                    print("FAIL %s: first difference at line %d\n  got:      %s\n  expected: %s"
                          % (name, i + 1, g.decode("utf-8", "replace"),
                             e.decode("utf-8", "replace")))
                    break
            failed += 1
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary)
    return 0 if failed == 0 else 1


def main(argv):
    usage = ("usage: schedrec_reader.py [--info] FILE.sched | "
             "schedrec_reader.py --selftest VECTORS_DIR")
    try:
        if len(argv) == 2 and argv[0] == "--selftest":
            return selftest(argv[1])
        if len(argv) == 2 and argv[0] == "--info":
            sys.stdout.write(info_text(read_trace(_read_file(argv[1]))))
            return 0
        if len(argv) == 1 and not argv[0].startswith("--"):
            out = trace_to_jsonl(read_trace(_read_file(argv[0])))
            sys.stdout.buffer.write(out.encode("utf-8"))
            return 0
        print(usage, file=sys.stderr)
        return 1
    except (SchedError, OSError) as exc:
        msg = str(exc).replace("\n", " ")
        print("error: %s" % msg, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
