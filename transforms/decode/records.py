"""Variable-length files (record formats V and VB): planning blocks and decoding them.

A V file is a chain of records, each behind a 4-byte RDW giving its length; a VB file groups
such records in blocks behind a 4-byte BDW. :func:`plan_variable_blocks` reads the whole file
once, sequentially, with the index pass (:func:`ikou.kernels.scan_records`, compiled), and cuts
it into :class:`~ikou.transforms.decode.blocks.Block`\\ s at record (VB: block) boundaries of
about ``block_size`` bytes, so the blocks decode in parallel like fixed-length ones.

What cannot be read is found there too: at a bad RDW or BDW the scan looks for the next offset
where :data:`RESYNC_UNITS` records (VB: blocks) in a row are plausible and chain exactly (or
end exactly at the end of the file); the bytes skipped are one quarantine entry (``BAD_RDW`` /
``BAD_BDW``, or ``TRUNCATED_RECORD`` when the file ends inside the record), at most
8 MiB each (a longer stretch is several entries). A bad RDW inside a good VB
block skips to the block's end. The block carries these entries (``Block.spans``); every byte
of the file is a record (RDW and payload), a BDW, or one entry.

:func:`decode_variable_block` scans its block's records again (the good stretches between the
entries, which must chain exactly as planned) and decodes them with the fixed-length kernel:
the buffer is padded so each record can be read at the layout's length; a field wholly past a
record's end is null (the record does not carry it), a field partly past it is an error
(``SHORT_FIELD``), kernel errors of such fields are dropped. A record longer than the layout is
``LONG_RECORD`` (quarantined) unless the layout says ``extra_bytes: ignore``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ikou.kernels import (
    RecordFormat,
    Stop,
    describe_stop,
    find_resync,
    format_errors,
    scan_records,
)
from ikou.kernels._decode_common import join_columns
from ikou.kernels.records import RESYNC_NEED_MORE, RESYNC_NONE
from ikou.transforms import fileio
from ikou.transforms.decode.protocols import LayoutLike

__all__ = [
    "BAD_BDW",
    "BAD_RDW",
    "LONG_RECORD",
    "RESYNC_UNITS",
    "SHORT_FIELD",
    "decode_variable_block",
    "plan_variable_blocks",
]

BAD_RDW = "BAD_RDW"
BAD_BDW = "BAD_BDW"
SHORT_FIELD = "SHORT_FIELD"
LONG_RECORD = "LONG_RECORD"
TRUNCATED_RECORD = "TRUNCATED_RECORD"  # as blocks.TRUNCATED_RECORD
UNKNOWN_RECORD_TYPE = "UNKNOWN_RECORD_TYPE"

#: records (VB: blocks) in a row that must chain for the scan to pick up after a bad word
RESYNC_UNITS = 3
READ_CHUNK = 16 << 20
HEADER = 4
#: the largest quarantine entry: a longer unreadable stretch is several entries (a fixed size,
#: not the block size, so the entries do not depend on the block size)
MAX_ENTRY = 8 << 20


def kernel_format(layout: LayoutLike) -> RecordFormat:
    return layout.framing.kernel_format()


# -- planning ----------------------------------------------------------------------------

class _Cutter:
    """Cuts a file into blocks at the first boundary at or after every ``block_size`` bytes."""

    def __init__(self, block_cls, input_index: int, path: str, block_size: int):
        self.block_cls = block_cls
        self.input_index, self.path, self.block_size = input_index, path, block_size
        self.blocks: list = []
        self.start = 0
        self.first = 0
        self.spans: list[tuple] = []

    def _cut(self, at: int, entries: int) -> None:
        spans = tuple(s for s in self.spans if s[0] < at)
        self.spans = [s for s in self.spans if s[0] >= at]
        self.blocks.append(self.block_cls(self.input_index, self.path, len(self.blocks),
                                          self.first, entries - self.first, self.start,
                                          at - self.start, 0, spans))
        self.start, self.first = at, entries

    def boundaries(self, offsets: np.ndarray, entries: np.ndarray) -> None:
        """Possible cuts: at ``offsets[i]`` (ascending) ``entries[i]`` entries lie before."""
        i = 0
        while True:
            j = int(np.searchsorted(offsets, self.start + self.block_size, side="left"))
            j = max(j, i)
            if j >= len(offsets):
                return
            self._cut(int(offsets[j]), int(entries[j]))
            i = j + 1

    def finish(self, size: int, entries: int) -> list:
        if size > self.start or not self.blocks:
            self._cut(size, entries)
        return self.blocks


def _span_entries(cutter: _Cutter, start: int, end: int, code: str, message: str,
                  record_no: int) -> int:
    """Entries for the bytes ``start..end`` (pieces of at most :data:`MAX_ENTRY`); returns the
    record count after them."""
    n = max(1, -(-(end - start) // MAX_ENTRY))
    for i in range(n):
        a = start + i * MAX_ENTRY
        b = min(end, a + MAX_ENTRY)
        note = f" (part {i + 1} of {n})" if n > 1 else ""
        cutter.spans.append((a, b - a, code, message + note))
        record_no += 1
        cutter.boundaries(np.array([b]), np.array([record_no]))
    return record_no


def _span_reason(reason: Stop, found: int, fmt: RecordFormat, stop: int, size: int,
                 resync: int, resync_none: bool) -> tuple[str, str]:
    left = size - stop
    words = describe_stop(reason, found, fmt, left)
    skipped = resync - stop
    if reason == Stop.TRUNCATED or (resync_none and reason in (Stop.RDW_PAST_END,
                                                                 Stop.BDW_PAST_END)):
        return TRUNCATED_RECORD, f"{words}: {skipped} bytes at the end of the file"
    code = BAD_BDW if reason >= Stop.BDW_SHORT else BAD_RDW
    unit = "blocks" if fmt.blocked else "records"
    where = ("to the end of the file" if resync_none
             else f"up to byte {resync}, where {RESYNC_UNITS} {unit} in a row chain again")
    return code, f"{words}; {skipped} bytes skipped {where}"


def plan_variable_blocks(block_cls, input_index: int, path: str, size: int, layout: LayoutLike,
                         block_size: int) -> list:
    """Blocks of a V / VB file (read once, sequentially); see the module docstring."""
    fmt = kernel_format(layout)
    cutter = _Cutter(block_cls, input_index, str(path), block_size)
    chunk = max(READ_CHUNK, 4 * RESYNC_UNITS * (fmt.unit_max + HEADER))
    record_no = 0
    with fileio.open_read(path) as f:
        buf = f.read(min(chunk, size))
        buf_off = 0
        pos = 0
        bad = None  # (stop, reason, found) while resynchronising
        search = 0

        def refill(keep: int):
            nonlocal buf, buf_off
            more = f.read(chunk)
            if not more:
                raise OSError(f"{path}: read {buf_off + len(buf)} of {size} bytes "
                              "(file changed while reading?)")
            buf = buf[keep - buf_off:] + more
            buf_off = keep

        while True:
            at_eof = buf_off + len(buf) >= size
            if bad is None:
                res = scan_records(buf, pos - buf_off, len(buf), fmt, at_eof)
                n = len(res.rdw)
                if n:
                    rdw = res.rdw + buf_off
                    if fmt.blocked:
                        prev_end = np.empty(n, dtype=np.int64)
                        prev_end[0] = pos
                        prev_end[1:] = (rdw + HEADER + res.length)[:-1]
                        at_bdw = np.flatnonzero(rdw - prev_end == HEADER)
                        cutter.boundaries(rdw[at_bdw] - HEADER, record_no + at_bdw)
                    else:
                        cutter.boundaries(rdw, record_no + np.arange(n))
                    record_no += n
                stop = res.stop + buf_off
                if res.reason in (Stop.END, Stop.NEED_MORE):
                    if at_eof and res.reason == Stop.END:
                        break
                    pos = stop
                    refill(pos)
                    continue
                if res.block_end >= 0:  # a bad RDW in a good VB block: skip to its end
                    end = res.block_end + buf_off
                    message = (f"{describe_stop(res.reason, res.found, fmt)}; "
                               f"{end - stop} bytes skipped to the end of the block")
                    record_no = _span_entries(cutter, stop, end, BAD_RDW, message, record_no)
                    pos = end
                    continue
                if res.reason == Stop.TRUNCATED:
                    code, message = _span_reason(res.reason, -1, fmt, stop, size, size, True)
                    record_no = _span_entries(cutter, stop, size, code, message, record_no)
                    break
                bad = (stop, res.reason, res.found)
                search = stop + 1
                continue
            off, status = find_resync(buf, search - buf_off, len(buf), fmt, RESYNC_UNITS,
                                      at_eof)
            if status == RESYNC_NEED_MORE:
                search = off + buf_off
                refill(search)
                continue
            end = size if status == RESYNC_NONE else off + buf_off
            stop, reason, found = bad
            code, message = _span_reason(reason, found, fmt, stop, size, end,
                                         status == RESYNC_NONE)
            record_no = _span_entries(cutter, stop, end, code, message, record_no)
            bad = None
            pos = end
            if status == RESYNC_NONE:
                break
    return cutter.finish(size, record_no)


# -- decoding ----------------------------------------------------------------------------

def _gather_ranges(arr: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """``arr[s:s + n]`` for every (start, length), as a binary array (no Python loop)."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    idx = np.repeat(starts - offsets[:-1], lengths) + np.arange(total, dtype=np.int64)
    return pa.Array.from_buffers(pa.binary(), len(starts), [
        None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(arr[idx].tobytes())])


class Geometry:
    """Where each entry of a variable-length block lies (for the quarantine builder)."""

    def __init__(self, arr: np.ndarray, raw_start: np.ndarray, raw_length: np.ndarray,
                 file_offset: np.ndarray):
        self.arr, self.raw_start, self.raw_length = arr, raw_start, raw_length
        self.file_offset = file_offset

    def raw(self, local: np.ndarray) -> pa.Array:
        return _gather_ranges(self.arr, self.raw_start[local], self.raw_length[local])

    def raw_one(self, local: int) -> bytes:
        s = int(self.raw_start[local])
        return self.arr[s:s + int(self.raw_length[local])].tobytes()


def _index_block(block, buf: bytes, fmt: RecordFormat):
    """(RDW offsets, payload lengths) of the block's records, block-relative, checked against
    the plan: the stretches between the block's entries chain exactly."""
    rdws, lens = [], []
    pos = 0
    ends = [(s[0] - block.start_offset, s[1]) for s in block.spans] + [(len(buf), 0)]
    for b, ln in ends:
        if b > pos:
            r = scan_records(buf, pos, len(buf), fmt, True, limit=b)
            if r.stop != b:
                raise OSError(f"{block.path}: the records at byte {block.start_offset + pos} "
                              "no longer chain as when the file was planned (file changed "
                              "while reading?)")
            rdws.append(r.rdw)
            lens.append(r.length)
        pos = b + ln
    rdw = np.concatenate(rdws) if rdws else np.zeros(0, dtype=np.int64)
    length = np.concatenate(lens) if lens else np.zeros(0, dtype=np.int64)
    return rdw, length


def decode_variable_block(dec, block, buf: bytes, result_cls, builder_cls):
    """Decode one block of a V / VB file (``dec``: the BlockDecoder)."""
    from ikou.transforms.decode.blocks import _reason, _repeat_str, source_name

    layout = dec.layout
    rl = layout.record_length
    fmt = dec.record_format
    res = result_cls(block.input_index, block.block_index, block.path, source_name(block.path),
                     block.n_records, len(buf))
    rdw, length = _index_block(block, buf, fmt)
    n_rec, n_span = len(rdw), len(block.spans)
    if n_rec + n_span != block.n_records:
        raise OSError(f"{block.path}: block {block.block_index} holds {n_rec + n_span} "
                      f"records, {block.n_records} when planned (file changed while reading?)")
    span_off = np.array([s[0] - block.start_offset for s in block.spans], dtype=np.int64)
    span_len = np.array([s[1] for s in block.spans], dtype=np.int64)
    offs = np.concatenate([rdw, span_off])
    order = np.argsort(offs, kind="stable")
    local_of = np.empty(len(offs), dtype=np.int64)
    local_of[order] = np.arange(len(offs))
    rec_local = local_of[:n_rec]  # local entry index of each record
    span_local = local_of[n_rec:]
    n = block.n_records
    # per entry: payload start (for records) / offset, payload length, raw extent
    starts = np.zeros(n, dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    raw_start = np.zeros(n, dtype=np.int64)
    raw_len = np.zeros(n, dtype=np.int64)
    starts[rec_local] = rdw + HEADER
    lengths[rec_local] = length
    raw_start[rec_local] = rdw
    raw_len[rec_local] = length + HEADER
    raw_start[span_local] = span_off
    raw_len[span_local] = span_len
    starts[span_local] = span_off
    pbuf = bytes(buf) + bytes(rl)  # every record readable at the layout's length
    arr = np.frombuffer(pbuf, dtype=np.uint8)
    q = builder_cls(res.source, block.input_index, block.first_record, block.start_offset, 0)
    q.geometry = Geometry(arr, raw_start, raw_len, block.start_offset + raw_start)

    kind_names = list(layout.kinds)
    recs = np.sort(rec_local)
    # records longer than the layout
    long_ = recs[lengths[recs] > rl]
    if len(long_):
        if layout.framing.extra_bytes == "ignore":
            res.tolerated_by_code[LONG_RECORD] = len(long_)
        else:
            m = len(long_)
            msg = join_columns(["record of ", pa.array(lengths[long_]).cast(pa.string()),
                                f" bytes, longer than the layout's record_length {rl} "
                                f"(extra_bytes: ignore decodes the first {rl})"], string=True)
            q.add(long_, None, q.geometry.raw(long_), np.ones(m, dtype=np.int64),
                  pa.nulls(m, pa.string()), _repeat_str(LONG_RECORD, m),
                  pa.array(np.full(m, rl, dtype=np.int32)), msg)
            res.counts[""] = res.counts.get("", 0) + m
            recs = recs[lengths[recs] <= rl]
    eff = np.minimum(lengths, rl)
    kind_idx = _classify(dec, arr, starts, eff, recs)
    unknown = recs[kind_idx < 0]
    if len(unknown):
        _quarantine_unknown(dec, q, unknown, eff)
        res.counts[""] = res.counts.get("", 0) + len(unknown)
    for ki, kind in enumerate(kind_names):
        sel = recs[kind_idx == ki]
        res.counts[kind] = res.counts.get(kind, 0) + int(len(sel))
        _decode_kind(dec, block, pbuf, arr, starts, eff, kind, sel, res, q)
    for i, s in zip(span_local.tolist(), block.spans, strict=True):
        raw = q.geometry.raw_one(i)
        kind = None
        if s[2] == TRUNCATED_RECORD:
            kind = dec._kind_of_fragment(raw[HEADER:]) if len(raw) > HEADER else None
        res.counts[kind or ""] = res.counts.get(kind or "", 0) + 1
        q.put(i, kind, raw, [_reason(None, s[2], s[3], None)])
    return res, q


def _classify(dec, arr, starts, eff, recs) -> np.ndarray:
    kinds = list(dec.layout.kinds)
    out = np.full(len(recs), -1, dtype=np.int64)
    if dec.rt is None:
        out[:] = kinds.index("data") if "data" in kinds else 0
        return out
    off, ln = dec.rt
    if not len(recs):
        return out
    fb = arr[starts[recs][:, None] + off + np.arange(ln)[None, :]]
    holds = eff[recs] >= off + ln
    for i, kind in enumerate(kinds):
        hit = (fb == dec.codes[kind][None, :]).all(axis=1) & holds
        out[hit & (out < 0)] = i
    return out


def _quarantine_unknown(dec, q, sel, eff) -> None:
    from ikou.transforms.decode.blocks import _hex_columns, _repeat_str

    off, ln = dec.rt
    n = len(sel)
    short = eff[sel] < off + ln
    arr = q.geometry.arr
    found = _hex_columns(arr, q.geometry.raw_start[sel] + HEADER + off, ln)
    msg = join_columns([f"record type at byte {off}: ", found, " matches no kind of the layout"],
                       string=True)
    if short.any():
        short_msg = join_columns(["record of ", pa.array(eff[sel]).cast(pa.string()),
                                  f" bytes ends before its record type (bytes {off}-"
                                  f"{off + ln - 1})"], string=True)
        msg = pa.compute.if_else(pa.array(short), short_msg, msg)
    q.add(sel, None, q.geometry.raw(sel), np.ones(n, dtype=np.int64),
          pa.nulls(n, pa.string()), _repeat_str(UNKNOWN_RECORD_TYPE, n),
          pa.array(np.full(n, off, dtype=np.int32)), msg)


def _columns_of(plan) -> dict[int, list[int]]:
    """Field index -> its output column indexes in the kernel's batch."""
    names = {name: i for i, name in enumerate(plan.schema.names)}
    out: dict[int, list[int]] = {}
    for fi, f in enumerate(plan.fields):
        if f.type == "filler":
            continue
        cols = [f.name] + ([f.name + "_raw", f.name + "_status"] if f.type == "wareki" else [])
        out[fi] = [names[c] for c in cols if c in names]
    return out


def _full_size(spec, arr: np.ndarray, pbuf: bytes, starts: np.ndarray, lengths: np.ndarray,
               rl: int):
    """Records whose OCCURS … DEPENDING ON table holds only the counter's elements, laid out
    at the layout's full size (the absent elements as 0x00, the items after the table moved
    back to their place): (buffer, array, starts, lengths at full size)."""
    from ikou.kernels import decode_block as kernel_decode_block

    start, size, n, counter_plan = spec
    m = len(starts)
    got = kernel_decode_block(pbuf, np.ascontiguousarray(starts), counter_plan).batch.column(0)
    if pa.types.is_decimal(got.type):
        got = got.cast(pa.int64())
    count = np.clip(np.asarray(got.fill_null(0).to_numpy(zero_copy_only=False),
                               dtype=np.int64), 0, n)
    j = np.arange(rl, dtype=np.int64)[None, :]
    present = start + count[:, None] * size
    shift = (n - count[:, None]) * size
    src = np.where(j < present, j, j - shift)
    valid = (j < present) | (j >= start + n * size)
    mat = np.zeros((m, rl), dtype=np.uint8)
    idx = starts[:, None] + src
    mat[valid] = arr[np.clip(idx, 0, len(arr) - 1)[valid]]
    full = np.minimum(lengths + (n - count) * size, rl)
    # the bytes past each record's own end stay 0x00 (the short-record checks use ``full``)
    mat[j >= full[:, None]] = 0
    buf = mat.tobytes()
    return buf, np.frombuffer(buf, dtype=np.uint8), np.arange(m, dtype=np.int64) * rl, full


def _decode_kind(dec, block, pbuf, arr, starts, eff, kind, sel, res, q) -> None:
    """Decode the records ``sel`` (local entries) of one kind, cut to their lengths."""
    from ikou.kernels import decode_block as kernel_decode_block
    from ikou.transforms.decode.blocks import _code_names, _count_codes
    from ikou.transforms.decode.gaiji_count import count_gaiji

    if not len(sel):
        if kind in dec.schemas:
            res.rows[kind] = 0
        return
    plan = dec.plans[kind]
    rl = plan.record_length
    m = len(sel)
    L = eff[sel]
    dbuf, darr, dstarts = pbuf, arr, starts[sel]
    if kind in dec.shrink:  # records hold only the counter's elements: laid out at full size
        dbuf, darr, dstarts, L = _full_size(dec.shrink[kind], arr, pbuf, dstarts, L, rl)
    out = kernel_decode_block(dbuf, np.ascontiguousarray(dstarts), plan)
    if dec.gaiji_counts:
        mat = darr[dstarts[:, None] + np.arange(rl)[None, :]]
        mat[np.arange(rl)[None, :] >= L[:, None]] = 0x20
        count_gaiji(mat.ravel(), np.arange(m, dtype=np.int64) * rl, plan, res.gaiji, rl)
    f_off = np.array([f.offset for f in plan.fields], dtype=np.int64)
    f_end = f_off + np.array([f.length for f in plan.fields], dtype=np.int64)
    data = np.array([f.type != "filler" for f in plan.fields], dtype=bool)
    cut = np.flatnonzero(f_end > L.min()) if m else np.zeros(0, dtype=np.int64)
    past = np.zeros((m, len(plan.fields)), dtype=bool)
    partial = np.zeros((m, len(plan.fields)), dtype=bool)
    if len(cut):
        past[:, cut] = f_off[cut][None, :] >= L[:, None]
        partial[:, cut] = (f_off[cut][None, :] < L[:, None]) & (f_end[cut][None, :] > L[:, None])
        partial &= data[None, :]
    err = out.errors
    e_keep = ~(past | partial)[err.row, err.field] if len(err) else np.zeros(0, dtype=bool)
    e_row, e_field, e_code = err.row[e_keep], err.field[e_keep], err.code[e_keep]
    e_pos, e_value, e_reject = err.pos[e_keep], err.value[e_keep], err.reject[e_keep]
    s_row, s_field = np.nonzero(partial)
    bad_mask = np.zeros(m, dtype=bool)
    bad_mask[e_row[e_reject]] = True
    bad_mask[s_row] = True
    bad = np.flatnonzero(bad_mask)
    keep = ~bad_mask
    tolerated = keep[e_row]
    if tolerated.any():
        for name, k in _count_codes(e_code[tolerated]).items():
            res.tolerated_by_code[name] = res.tolerated_by_code.get(name, 0) + k
    if len(bad):
        e = ~tolerated
        names = pa.array([f.name for f in plan.fields], pa.string())
        k_msgs = format_errors(plan, e_field[e], e_code[e], e_pos[e], e_value[e])
        s_msgs = join_columns([
            pa.array([f"field {f.name} ({f.type}): {SHORT_FIELD}: bytes {f.offset}-"
                      f"{f.offset + f.length - 1} cut by the end of the record (record of "
                      for f in plan.fields], pa.string()).take(pa.array(s_field)),
            pa.array(L[s_row]).cast(pa.string()), " bytes)"], string=True)
        rows = np.concatenate([e_row[e], s_row])
        fields = np.concatenate([e_field[e].astype(np.int64), s_field])
        order = np.lexsort((fields, rows))
        take = pa.array(order)
        codes = pa.concat_arrays([_code_names(e_code[e]),
                                  pa.array([SHORT_FIELD] * len(s_row), pa.string())]).take(take)
        pos = pa.array(np.concatenate([e_pos[e].astype(np.int64), f_off[s_field]])[order],
                       pa.int32())
        msgs = pa.concat_arrays([k_msgs.cast(pa.string()), s_msgs]).take(take)
        local = sel[bad]
        q.add(local, kind, q.geometry.raw(local),
              np.bincount(np.searchsorted(bad, rows[order]), minlength=len(bad)),
              names.take(pa.array(fields[order])), codes, pos, msgs)
    batch = out.batch
    cols = _columns_of(plan)
    if past.any():
        arrays = list(batch.columns)
        for fi in np.flatnonzero(past.any(axis=0)).tolist():
            mask = past[:, fi]
            idx = pa.array(np.arange(m), mask=mask)
            for ci in cols.get(fi, []):
                arrays[ci] = arrays[ci].take(idx)
        batch = pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
    dec.emit_kept(block, pbuf, starts, kind, batch, sel, keep, res, q)
