# cython: language_level=3
"""Compiled decoding kernel: fixed-length CP932 records → Arrow RecordBatch + per-field errors.

Twin: ``_decode_py.py`` (same behaviour). Shared definitions: ``_decode_common.py``.
The plan is turned once into C structs and lookup tables (cached on the plan, never pickled);
``decode_block`` validates its arguments, allocates, then runs every field over every record
with the GIL released, filling malloc'd buffers that are handed to Arrow without a copy.
"""

from cpython.buffer cimport PyBuffer_FillInfo
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.float cimport FLT_MAX
from libc.math cimport fabs, ldexp
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove, memset

import numpy as np
import pyarrow as pa

from ._decode_common import (
    EBCDIC_DIGIT_MAP,
    EDITED_EBCDIC_MAP,
    ON_ERROR,
    POLICY,
    TRIM,
    TYPE_CODES,
    WAREKI_STATUSES,
    BlockError,
    DecodeErrors,
    DecodePlan,
    DecodeResult,
    ErrorCode,
    check_block,
    is_space_string,
    make_batch,
    parse_picture,
)

__all__ = ["decode_block", "CYTHON_MODULE"]

CYTHON_MODULE = 1

cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>
    #if !defined(__SIZEOF_INT128__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    #error "ikou.kernels._decode needs a little-endian target and a compiler with __int128"
    #endif
    typedef __int128 ikou_i128;
    static inline uint64_t ikou_load64(const unsigned char *p) {
        uint64_t w; memcpy(&w, p, 8); return w;
    }
    static inline void ikou_store64(unsigned char *o, uint64_t w) { memcpy(o, &w, 8); }
    static inline void ikou_store32(unsigned char *o, uint32_t w) { memcpy(o, &w, 4); }
    /* an unsigned integer of 2, 4 or 8 bytes in either byte order */
    static inline uint64_t ikou_load_uint(const unsigned char *p, int n, int little) {
        if (n == 2) { uint16_t v; memcpy(&v, p, 2); return little ? v : __builtin_bswap16(v); }
        if (n == 4) { uint32_t v; memcpy(&v, p, 4); return little ? v : __builtin_bswap32(v); }
        { uint64_t v; memcpy(&v, p, 8); return little ? v : __builtin_bswap64(v); }
    }
    static inline void ikou_prefetch(const unsigned char *p) { __builtin_prefetch(p, 0, 3); }
    /* 8 EBCDIC digits (F0-F9, first digit in the lowest byte of a little-endian load) -> their
       value, or -1 when a byte is not such a digit */
    static inline int64_t ikou_ebcdic8(uint64_t x) {
        uint64_t lo = x & 0x0F0F0F0F0F0F0F0FULL;
        if ((x & 0xF0F0F0F0F0F0F0F0ULL) != 0xF0F0F0F0F0F0F0F0ULL
                || ((lo + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) != 0)
            return -1;
        lo = (lo * 10 + (lo >> 8)) & 0x00FF00FF00FF00FFULL;
        lo = (lo * 100 + (lo >> 16)) & 0x0000FFFF0000FFFFULL;
        lo = (lo * 10000 + (lo >> 32)) & 0xFFFFFFFFULL;
        return (int64_t)lo;
    }
    /* a decimal128 value as two 64-bit stores (a 16-byte memcpy of a register pair goes
       through the stack and stalls on store forwarding) */
    static inline void ikou_store128(char *o, ikou_i128 w) {
        uint64_t lo = (uint64_t)w, hi = (uint64_t)((unsigned __int128)w >> 64);
        memcpy(o, &lo, 8); memcpy(o + 8, &hi, 8);
    }
    /* eight bytes (a little-endian word) each through a 256-byte table */
    static inline uint64_t ikou_map8(const unsigned char *t, uint64_t w) {
        return (uint64_t)t[w & 0xFF] | (uint64_t)t[(w >> 8) & 0xFF] << 8
            | (uint64_t)t[(w >> 16) & 0xFF] << 16 | (uint64_t)t[(w >> 24) & 0xFF] << 24
            | (uint64_t)t[(w >> 32) & 0xFF] << 32 | (uint64_t)t[(w >> 40) & 0xFF] << 40
            | (uint64_t)t[(w >> 48) & 0xFF] << 48 | (uint64_t)t[w >> 56] << 56;
    }
    /* how many of a word's low bytes have their top bit clear (up to the first that has it) */
    static inline int ikou_ascii_prefix(uint64_t x) {
        uint64_t h = x & 0x8080808080808080ULL;
        return h ? __builtin_ctzll(h) >> 3 : 8;
    }
    /* 1 + index of the last byte of a little-endian word that is not an ASCII space (0: none) */
    static inline int ikou_last_nonspace(uint64_t w) {
        uint64_t x = w ^ 0x2020202020202020ULL;
        return x ? 8 - (__builtin_clzll(x) >> 3) : 0;
    }
    """
    # Cython only needs an integer type name; C sees a 128-bit integer.
    ctypedef long long ikou_i128
    uint64_t ikou_load64(const uint8_t *p) noexcept nogil
    void ikou_store64(uint8_t *o, uint64_t w) noexcept nogil
    void ikou_store32(uint8_t *o, uint32_t w) noexcept nogil
    void ikou_prefetch(const uint8_t *p) noexcept nogil
    uint64_t ikou_load_uint(const uint8_t *p, int n, int little) noexcept nogil
    void ikou_store128(char *o, ikou_i128 w) noexcept nogil
    int64_t ikou_ebcdic8(uint64_t x) noexcept nogil
    int ikou_last_nonspace(uint64_t w) noexcept nogil
    uint64_t ikou_map8(const uint8_t *t, uint64_t w) noexcept nogil
    int ikou_ascii_prefix(uint64_t x) noexcept nogil

# -- constants shared with _decode_common (checked at import) ---------------------------------
cdef enum: E_INVALID_BYTES = 1
cdef enum: E_CUT_DOUBLE_BYTE = 2
cdef enum: E_UNMAPPED_GAIJI = 3
cdef enum: E_NOT_DIGITS = 4
cdef enum: E_INT_OVERFLOW = 5
cdef enum: E_IMPOSSIBLE_DATE = 6
cdef enum: E_INVALID_SIGN = 7
cdef enum: E_BLANK_VALUE = 8
cdef enum: E_LOW_VALUE = 9
cdef enum: E_HIGH_VALUE = 10
cdef enum: E_INVALID_DBCS = 11
cdef enum: E_UNASSIGNED_BYTE = 12
cdef enum: E_ODD_DBCS_BYTES = 13
cdef enum: E_UNTERMINATED_SHIFT = 14
cdef enum: E_SHIFT_IN_DBCS = 15
cdef enum: E_UNMAPPABLE_CODE = 16
cdef enum: E_INVALID_SHIFT = 17
cdef enum: E_FLOAT_RANGE = 18
cdef enum: E_NOT_FINITE = 19
cdef enum: E_UNPAIRED_SURROGATE = 20
cdef enum: E_DIGITS_OVERFLOW = 21

cdef enum: T_TEXT = 1
cdef enum: T_DIGITS = 2
cdef enum: T_INT = 3
cdef enum: T_DATE = 4
cdef enum: T_WAREKI = 5
cdef enum: T_FILLER = 6
cdef enum: T_ZONED = 7
cdef enum: T_PACKED = 8
cdef enum: T_DECIMAL = 9
cdef enum: T_BYTES = 10
cdef enum: T_DBCS = 11
cdef enum: T_BINARY = 12
cdef enum: T_FLOAT = 13
cdef enum: T_EDITED = 14
cdef enum: T_NATIONAL = 15

# numeric-edited picture ops (ED_* in _decode_common)
cdef enum: ED_DIGIT = 1
cdef enum: ED_Z = 2
cdef enum: ED_STAR = 3
cdef enum: ED_LIT = 4
cdef enum: ED_POINT = 5
cdef enum: ED_PLUS = 6
cdef enum: ED_MINUS = 7
cdef enum: ED_CR = 8
cdef enum: ED_DB = 9
cdef enum: ED_NEXT = 10
cdef enum: ED_FLOAT_HEAD = 11
cdef enum: ED_FLOAT = 12

cdef enum: P_DECODE = 0
cdef enum: P_NULL = 1
cdef enum: P_EMPTY = 2
cdef enum: P_ERROR = 3
cdef enum: P_ZERO = 4        # edited `blank: zero` (not in POLICY: no other type has it)

cdef enum: OE_REJECT = 0
cdef enum: OE_NULL = 1
cdef enum: OE_REPLACE = 2

cdef enum: ST_VALID = 0
cdef enum: ST_OUT_OF_ERA = 1
cdef enum: ST_IMPOSSIBLE = 2
cdef enum: ST_UNKNOWN = 3
cdef enum: ST_BLANK = 4

# Table entry: bits 0-23 UTF-8 bytes (or long-entry index, or error code), 24-25 length,
# 26 kana that may merge with a following ﾞ/ﾟ, 27 space, 28 long entry, 29 error, 30 lead byte.
cdef enum: F_MERGE = 0x04000000
cdef enum: F_SPACE = 0x08000000
cdef enum: F_LONG = 0x10000000
cdef enum: F_ERROR = 0x20000000
cdef enum: F_LEAD = 0x40000000
# In the double-byte table of a mixed encoding (which has no lead-byte entries), bit 30 marks a
# code whose first byte may begin a shift sequence: the fast loop leaves it to the full check.
cdef enum: F_SHIFT = 0x40000000

cdef enum: INT32_MAX = 2147483647
cdef enum: CHUNK_ROWS = 256        # most rows a chunk
cdef enum: CHUNK_BYTES = 16384     # record bytes a chunk of wide records (fewer rows)

if ((E_INVALID_BYTES, E_CUT_DOUBLE_BYTE, E_UNMAPPED_GAIJI, E_NOT_DIGITS, E_INT_OVERFLOW,
     E_IMPOSSIBLE_DATE, E_INVALID_SIGN, E_BLANK_VALUE, E_LOW_VALUE, E_HIGH_VALUE,
     E_INVALID_DBCS, E_UNASSIGNED_BYTE, E_ODD_DBCS_BYTES, E_UNTERMINATED_SHIFT, E_SHIFT_IN_DBCS,
     E_UNMAPPABLE_CODE, E_INVALID_SHIFT, E_FLOAT_RANGE, E_NOT_FINITE, E_UNPAIRED_SURROGATE,
     E_DIGITS_OVERFLOW)
        != tuple(int(c) for c in ErrorCode)
        or TYPE_CODES != {"text": T_TEXT, "digits": T_DIGITS, "int": T_INT, "date": T_DATE,
                          "wareki": T_WAREKI, "filler": T_FILLER, "zoned": T_ZONED,
                          "packed": T_PACKED, "decimal": T_DECIMAL, "bytes": T_BYTES,
                          "dbcs": T_DBCS, "binary": T_BINARY, "float": T_FLOAT,
                          "edited": T_EDITED, "national": T_NATIONAL}
        or POLICY != {"decode": P_DECODE, "null": P_NULL, "empty": P_EMPTY, "error": P_ERROR}
        or ON_ERROR != {"reject": OE_REJECT, "null": OE_NULL, "replace": OE_REPLACE}
        or WAREKI_STATUSES != ("valid", "out_of_era", "impossible", "unknown", "blank")):
    raise ImportError("ikou.kernels._decode is out of step with _decode_common.py: rebuild it")

_STATUS_DICT = pa.array(WAREKI_STATUSES, pa.string())


# -- C structures ----------------------------------------------------------------------------
cdef struct Buf:
    char *ptr
    Py_ssize_t size
    Py_ssize_t cap

cdef struct Col:
    Buf data
    Buf offsets
    Buf valid
    Py_ssize_t nulls

cdef struct Err:
    int64_t row
    int64_t value
    int32_t field
    int32_t code
    int32_t pos
    int32_t reject

cdef struct Errs:
    Err *items
    Py_ssize_t n
    Py_ssize_t cap

cdef struct TTable:
    const uint32_t *single      # 256 entries
    const uint32_t *dbl         # 60 * 256 entries: lead_idx[lead] * 256 + trail
    const uint8_t *lead_idx     # 256
    const uint32_t *merge       # 64 * 2 entries: (kana - 0xA0) * 2 + (mark - 0xDE); 0 = none
    const char *blob            # long entries' UTF-8
    const uint32_t *long_off
    const uint32_t *long_len
    int max_exp                 # most output bytes per input byte
    # encodings other than CP932 (MixedTable): dbl has 65536 entries, lead_idx is the identity
    int mixed
    const uint8_t *shift_first  # 256 flags: first byte of a shift sequence
    int n_si
    int n_so
    uint8_t si_b[8]             # shift-in sequences: bytes (2 a sequence) and lengths
    uint8_t si_l[4]
    uint8_t so_b[8]
    uint8_t so_l[4]
    int mark0                   # bytes of ﾞ / ﾟ (-1: none) for merging widened kana
    int mark1
    const uint8_t *plain        # 256: the ASCII byte of a single byte that decodes to one
                                # ASCII character with no other handling, else 0x80
    uint64_t space8             # eight single-byte spaces (a byte whose `plain` is 0x20)
    int has_space8

cdef struct FSpec:
    int kind
    int index
    int offset
    int length
    int on_error
    int trim_left
    int trim_right
    int blank
    int low
    int high
    int table
    const char *repl
    int repl_len
    int scale
    int is_signed
    int ebcdic
    int precision
    int zero_parts
    const char *markers
    int n_markers
    const int32_t *era_start
    const int32_t *era_end
    const int32_t *era_base
    const uint8_t *era_valid
    int col
    int ebcdic_digits          # numeric field read through EBCDIC_DIGIT_MAP
    int start_double           # text: starts in double-byte state; dbcs: always
    int dbcs_only
    int little                 # binary / float / national: little-endian
    int ibm                    # float: IBM hexadecimal (else IEEE 754)
    int sign_leading           # zoned: the sign is in the first byte
    int sign_separate          # zoned: a separate sign byte
    int strict_sign            # zoned, unsigned: the sign position carries no sign (F zone)
    int has_limit              # binary with `digits`: |value| < limit
    uint64_t limit
    int mul_exp                # negative scale: the unscaled value x 10**mul_exp
    const uint8_t *ed_ops      # edited: picture ops / literals / fills, one a byte
    const uint8_t *ed_lits
    const uint8_t *ed_fills
    const uint8_t *ed_map      # edited: byte -> ASCII (identity for CP932)
    int float_end
    int float_kind
    int free_form
    int ed_digits
    int ed_scale
    int ed_has_sign


# -- memory ----------------------------------------------------------------------------------
# Output buffers are malloc'd, filled without the GIL and handed to Arrow (a _Mem owns each).
# Released buffers of 64 KiB or more are kept in a pool and reused by later calls: memory
# fresh from the OS costs a page fault per 4 KiB, and faults serialise threads of one process.
# The pool has a slot for every column of a wide record (a COBOL record of 200 numeric fields
# decoded on two threads), bounded in bytes.
# The pool is touched only with the GIL held (allocation before `nogil`, _Mem.__dealloc__).
cdef enum:
    POOL_SLOTS = 1024
    POOL_MIN = 65536
cdef Py_ssize_t POOL_MAX_BYTES = 256 * 1024 * 1024
cdef char *_pool_ptr[POOL_SLOTS]
cdef Py_ssize_t _pool_cap[POOL_SLOTS]
cdef int _pool_n = 0
cdef Py_ssize_t _pool_bytes = 0


cdef char *_pool_take(Py_ssize_t need, Py_ssize_t *cap):
    """A pooled buffer of at least `need` bytes (at most 4x), or NULL. GIL held."""
    global _pool_n, _pool_bytes
    cdef int i, best = -1
    for i in range(_pool_n):
        if need <= _pool_cap[i] <= 4 * need and (best < 0 or _pool_cap[i] < _pool_cap[best]):
            best = i
    if best < 0:
        return NULL
    cdef char *p = _pool_ptr[best]
    cap[0] = _pool_cap[best]
    _pool_bytes -= _pool_cap[best]
    _pool_n -= 1
    _pool_ptr[best] = _pool_ptr[_pool_n]
    _pool_cap[best] = _pool_cap[_pool_n]
    return p


cdef void _pool_give(char *p, Py_ssize_t cap) noexcept:
    """Keep a released buffer for reuse, or free it. GIL held."""
    global _pool_n, _pool_bytes
    if p == NULL:
        return
    if cap >= POOL_MIN and _pool_n < POOL_SLOTS and _pool_bytes + cap <= POOL_MAX_BYTES:
        _pool_ptr[_pool_n] = p
        _pool_cap[_pool_n] = cap
        _pool_n += 1
        _pool_bytes += cap
    else:
        free(p)


cdef int buf_init(Buf *b, Py_ssize_t cap, bint zero) except -1:
    """Allocate (GIL held: may reuse a pooled buffer)."""
    cdef Py_ssize_t got = 0
    if cap < 16:
        cap = 16
    b.ptr = _pool_take(cap, &got) if cap >= POOL_MIN else NULL
    if b.ptr == NULL:
        b.ptr = <char *>malloc(cap)
        if b.ptr == NULL:
            raise MemoryError()
        got = cap
    if zero:
        memset(b.ptr, 0, cap)
    b.size = 0
    b.cap = got
    return 0


cdef inline int buf_reserve(Buf *b, Py_ssize_t extra) except -1 nogil:
    cdef Py_ssize_t need = b.size + extra
    cdef Py_ssize_t ncap
    cdef char *p
    if need <= b.cap:
        return 0
    ncap = b.cap * 2
    if ncap < need:
        ncap = need
    p = <char *>realloc(b.ptr, ncap)
    if p == NULL:
        with gil:
            raise MemoryError()
    b.ptr = p
    b.cap = ncap
    return 0


cdef void buf_free(Buf *b) noexcept:
    """Release a buffer that was not handed to Arrow (GIL held)."""
    _pool_give(b.ptr, b.cap)
    b.ptr = NULL


cdef class _Mem:
    """Owns one malloc'd buffer and exposes it through the buffer protocol (read-only)."""
    cdef char *ptr
    cdef Py_ssize_t size
    cdef Py_ssize_t cap

    def __dealloc__(self):
        _pool_give(self.ptr, self.cap)
        self.ptr = NULL

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, <void *>self.ptr, self.size, 1, flags)

    def __releasebuffer__(self, Py_buffer *view):
        pass


cdef object wrap(Buf *b):
    """Hand a Buf to Arrow without copying (ownership moves to a _Mem object)."""
    cdef _Mem m = _Mem.__new__(_Mem)
    m.ptr = b.ptr
    m.size = b.size
    m.cap = b.cap
    b.ptr = NULL
    return pa.py_buffer(m)


# -- small helpers ---------------------------------------------------------------------------
cdef int add_err(Errs *errs, Py_ssize_t row, FSpec *f, int code, Py_ssize_t i,
                 int64_t value) except -1 nogil:
    cdef Err *p
    cdef Py_ssize_t ncap
    if errs.n == errs.cap:
        ncap = errs.cap * 2 if errs.cap else 64
        p = <Err *>realloc(errs.items, ncap * sizeof(Err))
        if p == NULL:
            with gil:
                raise MemoryError()
        errs.items = p
        errs.cap = ncap
    p = &errs.items[errs.n]
    p.row = row
    p.value = value
    p.field = f.index
    p.code = code
    p.pos = <int32_t>(f.offset + i)
    p.reject = f.on_error == OE_REJECT
    errs.n += 1
    return 0


cdef inline void set_null(Col *c, Py_ssize_t row) noexcept nogil:
    c.valid.ptr[row >> 3] &= ~(1 << (row & 7))
    c.nulls += 1


cdef inline bint all_eq(const uint8_t *p, Py_ssize_t n, uint8_t v) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] != v:
            return False
    return True


cdef inline int classify(const uint8_t *p, FSpec *f, bint with_blank, int *code,
                         int *byte) noexcept nogil:
    """Policy of a LOW-VALUE / HIGH-VALUE / blank field, or P_DECODE."""
    cdef uint8_t c0 = p[0]
    if c0 == 0x00 and f.low != P_DECODE and all_eq(p, f.length, 0x00):
        code[0] = E_LOW_VALUE
        byte[0] = 0x00
        return f.low
    if c0 == 0xFF and f.high != P_DECODE and all_eq(p, f.length, 0xFF):
        code[0] = E_HIGH_VALUE
        byte[0] = 0xFF
        return f.high
    # an EBCDIC zoned number's blank is EBCDIC spaces (0x40)
    cdef uint8_t sp = 0x40 if f.kind == T_ZONED and f.ebcdic else 0x20
    if with_blank and c0 == sp and f.blank != P_DECODE and all_eq(p, f.length, sp):
        code[0] = E_BLANK_VALUE
        byte[0] = sp
        return f.blank
    return P_DECODE


cdef inline int apply_policy(int policy, int code, int byte, Col *c, Py_ssize_t row,
                             FSpec *f, Errs *errs) except -1 nogil:
    """Null / error for a policy field (P_EMPTY leaves an empty value: nothing to do)."""
    if policy == P_ERROR:
        add_err(errs, row, f, code, 0, byte)
        set_null(c, row)
    elif policy == P_NULL:
        set_null(c, row)
    return 0


cdef inline bint is_leap(int y) noexcept nogil:
    return (y % 4 == 0 and y % 100 != 0) or y % 400 == 0


cdef inline int days_in_month(int y, int m) noexcept nogil:
    if m == 2:
        return 29 if is_leap(y) else 28
    if m == 4 or m == 6 or m == 9 or m == 11:
        return 30
    return 31


cdef inline int32_t days_from_civil(int y, int m, int d) noexcept nogil:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), y >= 1."""
    cdef int yy = y - (1 if m <= 2 else 0)
    cdef int era = yy // 400
    cdef int yoe = yy - era * 400
    cdef int doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    cdef int doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline int digit_run(const uint8_t *p, int n, int *value) noexcept nogil:
    """Parse n ASCII digits; return the index of the first non-digit or -1."""
    cdef int i, v = 0
    cdef unsigned int d
    for i in range(n):
        d = p[i] - 0x30
        if d > 9:
            return i
        v = v * 10 + <int>d
    value[0] = v
    return -1


# -- field kernels ---------------------------------------------------------------------------
cdef inline int end_text(Col *col, int32_t *offs, Py_ssize_t row, FSpec *f, Errs *errs, int nerr,
                         bint replace, uint8_t *base, uint8_t *last, uint8_t *o,
                         bint trim_right) except -1 nogil:
    """The end of one text value, for the single-byte and the mixed loops alike: null after an
    error (unless replaced), the blank policy for nothing but spaces, else the value's bytes
    (``last``: after the last non-space, when trimming right)."""
    if nerr and not replace:
        set_null(col, row)
    elif nerr == 0 and last == base:
        if f.blank == P_ERROR:
            add_err(errs, row, f, E_BLANK_VALUE, 0, 0x20)
            set_null(col, row)
        elif f.blank == P_NULL:
            set_null(col, row)
    else:
        col.data.size = ((last if trim_right else o) - <uint8_t *>col.data.ptr)
        if col.data.size > INT32_MAX:
            with gil:
                raise BlockError("block too large: a text column exceeds 2 GiB")
    offs[row + 1] = <int32_t>col.data.size
    return 0


cdef int k_text(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1, FSpec *f,
                TTable *t, Col *col, Errs *errs) except -1 nogil:
    cdef Py_ssize_t row, idx
    cdef const uint8_t *p
    cdef const uint8_t *p0
    cdef const uint8_t *end
    cdef uint8_t *o
    cdef uint8_t *base
    cdef uint8_t *last
    cdef uint8_t c
    cdef uint32_t e, e2
    cdef uint64_t w
    cdef int nerr, policy, code = 0, byte = 0, ecode, k
    cdef bint trim_left = f.trim_left, trim_right = f.trim_right
    cdef bint replace = f.on_error == OE_REPLACE
    cdef Py_ssize_t maxout = <Py_ssize_t>f.length * (
        t.max_exp if t.max_exp > f.repl_len else f.repl_len) + 8
    cdef int32_t *offs = <int32_t *>col.offsets.ptr
    for row in range(r0, r1):
        p0 = buf + starts[row] + f.offset
        p = p0
        end = p + f.length
        if f.low != P_DECODE or f.high != P_DECODE:
            policy = classify(p, f, False, &code, &byte)
            if policy != P_DECODE:
                apply_policy(policy, code, byte, col, row, f, errs)
                offs[row + 1] = <int32_t>col.data.size
                continue
        buf_reserve(&col.data, maxout)
        base = <uint8_t *>col.data.ptr + col.data.size
        o = base
        last = base
        nerr = 0
        while p < end:
            c = p[0]
            if c < 0x80:
                # ASCII: itself in every variant; eight bytes at a time where possible
                if p + 8 <= end and not (trim_left and o == base):
                    w = ikou_load64(p)
                    if (w & 0x8080808080808080ULL) == 0:
                        ikou_store64(o, w)
                        k = ikou_last_nonspace(w)
                        if k:
                            last = o + k
                        o += 8
                        p += 8
                        continue
                if c == 0x20:
                    if not (trim_left and o == base):
                        o[0] = c
                        o += 1
                else:
                    o[0] = c
                    o += 1
                    last = o
                p += 1
                continue
            e = t.single[c]
            if (e & (F_LEAD | F_MERGE | F_LONG | F_SPACE)) == 0:
                # common single-byte character (half-width kana): inline UTF-8
                ikou_store32(o, e)
                o += (e >> 24) & 3
                last = o
                p += 1
                continue
            if e & F_LEAD:
                if p + 1 >= end:
                    add_err(errs, row, f, E_CUT_DOUBLE_BYTE, p - p0, c)
                    nerr += 1
                    if replace:
                        memcpy(o, f.repl, f.repl_len)
                        o += f.repl_len
                        last = o
                    p += 1
                    continue
                e = t.dbl[<Py_ssize_t>t.lead_idx[c] * 256 + p[1]]
                if (e & (F_ERROR | F_LONG)) == 0:
                    # common double-byte character (or U+3000 padding): inline UTF-8
                    p += 2
                    if (e & F_SPACE) == 0:
                        ikou_store32(o, e)
                        o += (e >> 24) & 3
                        last = o
                    elif not (trim_left and o == base):
                        ikou_store32(o, e)
                        o += (e >> 24) & 3
                    continue
                if e & F_ERROR:
                    ecode = e & 0xFF
                    add_err(errs, row, f, ecode, p - p0, (<int64_t>c << 8) | p[1])
                    nerr += 1
                    if replace:
                        memcpy(o, f.repl, f.repl_len)
                        o += f.repl_len
                        last = o
                    p += 1 if ecode == E_INVALID_BYTES else 2
                    continue
                p += 2
            elif e & F_MERGE:
                # widened half-width kana, merged with a following ﾞ/ﾟ where possible
                if p + 1 < end and (p[1] == 0xDE or p[1] == 0xDF):
                    e2 = t.merge[(c - 0xA0) * 2 + (p[1] - 0xDE)]
                    if e2 != 0:
                        e = e2
                        p += 1
                p += 1
                if (e & (F_LONG | F_SPACE)) == 0:
                    ikou_store32(o, e)
                    o += (e >> 24) & 3
                    last = o
                    continue
            else:
                p += 1
            if e & F_SPACE:
                if trim_left and o == base:
                    continue
            if e & F_LONG:
                idx = e & 0xFFFFFF
                memcpy(o, t.blob + t.long_off[idx], t.long_len[idx])
                o += t.long_len[idx]
            else:
                ikou_store32(o, e)  # the UTF-8 bytes, then scratch overwritten by what follows
                o += (e >> 24) & 3
            if not (e & F_SPACE):
                last = o
        end_text(col, offs, row, f, errs, nerr, replace, base, last, o, trim_right)
    return 0


cdef inline int match_seq(const uint8_t *sb, const uint8_t *sl, int nseq, const uint8_t *p,
                          Py_ssize_t i, Py_ssize_t L) noexcept nogil:
    """Length of the shift sequence that starts at p[i] (0: none)."""
    cdef int k
    for k in range(nseq):
        if sl[k] == 1:
            if p[i] == sb[2 * k]:
                return 1
        elif i + 1 < L and p[i] == sb[2 * k] and p[i + 1] == sb[2 * k + 1]:
            return 2
    return 0


cdef inline int64_t seq_value(const uint8_t *p, int k) noexcept nogil:
    return p[0] if k == 1 else (<int64_t>p[0] << 8) | p[1]


cdef int k_mixed(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1,
                 FSpec *f, TTable *t, Col *col, Errs *errs) except -1 nogil:
    """text / dbcs in an encoding other than CP932: single-byte and shift-coded double-byte.

    Two fast loops do the common work: in single-byte state, eight bytes at a time while they
    decode to plain ASCII (``t.plain``); in double-byte state, codes whose entry holds its UTF-8
    (one flag test: not an error, a long string or a possible shift code). Everything else goes
    through the byte-by-byte code, the only one that reports errors.
    """
    cdef Py_ssize_t row, idx, i, L = f.length, shift_at, retry
    cdef const uint8_t *p0
    cdef uint8_t *o
    cdef uint8_t *base
    cdef uint8_t *last
    cdef uint8_t c
    cdef uint32_t e, e2
    cdef uint64_t w, x, m
    cdef int nerr, policy, code = 0, byte = 0, k, j
    cdef bint dstate, emit
    cdef bint trim_left = f.trim_left, trim_right = f.trim_right
    cdef bint replace = f.on_error == OE_REPLACE
    cdef bint dbcs = f.dbcs_only
    cdef bint start_double = f.start_double
    cdef bint has_space8 = t.has_space8
    cdef uint64_t space8 = t.space8
    # the tables in locals: a store through `o` (bytes) may alias anything, so what is read
    # through `t` would be loaded again after every store
    cdef const uint32_t *single = t.single
    cdef const uint32_t *dbl = t.dbl
    cdef const uint8_t *plain = t.plain
    cdef const uint8_t *shift_first = t.shift_first
    cdef Py_ssize_t maxout = <Py_ssize_t>f.length * (
        t.max_exp if t.max_exp > f.repl_len else f.repl_len) + 8
    cdef int32_t *offs = <int32_t *>col.offsets.ptr
    for row in range(r0, r1):
        p0 = buf + starts[row] + f.offset
        if f.low != P_DECODE or f.high != P_DECODE:
            policy = classify(p0, f, False, &code, &byte)
            if policy != P_DECODE:
                apply_policy(policy, code, byte, col, row, f, errs)
                offs[row + 1] = <int32_t>col.data.size
                continue
        buf_reserve(&col.data, maxout)
        base = <uint8_t *>col.data.ptr + col.data.size
        o = base
        last = base
        nerr = 0
        dstate = start_double
        shift_at = -1
        retry = 0
        i = 0
        while i < L:
            emit = False
            if not dstate:
                # plain single-byte characters, up to eight at a time (eight ASCII bytes out)
                if i + 8 <= L and i >= retry:
                    w = ikou_load64(p0 + i)
                    if has_space8 and w == space8:
                        if not (trim_left and o == base):
                            ikou_store64(o, 0x2020202020202020ULL)
                            o += 8
                        i += 8
                        continue
                    if not (trim_left and o == base):
                        x = ikou_map8(plain, w)
                        k = ikou_ascii_prefix(x)
                        if k:
                            ikou_store64(o, x)  # the bytes past the k-th are scratch
                            if k < 8:
                                # ... and count as spaces when looking for the last non-space
                                m = (1ULL << (8 * k)) - 1
                                x = (x & m) | (0x2020202020202020ULL & ~m)
                            j = ikou_last_nonspace(x)
                            if j:
                                last = o + j
                            o += k
                            i += k
                            continue
                        retry = i + 8  # not plain: the next eight bytes one by one
                c = p0[i]
                e = single[c]
                if (e & (F_LEAD | F_ERROR | F_MERGE | F_LONG)) == 0:
                    i += 1
                    if (e & F_SPACE) == 0:
                        ikou_store32(o, e)
                        o += (e >> 24) & 3
                        last = o
                    elif not (trim_left and o == base):
                        ikou_store32(o, e)
                        o += (e >> 24) & 3
                    continue
                if e & F_LEAD:
                    k = match_seq(t.si_b, t.si_l, t.n_si, p0, i, L)
                    if k:
                        dstate = True
                        shift_at = i
                        i += k
                        continue
                    k = match_seq(t.so_b, t.so_l, t.n_so, p0, i, L)
                    if k:
                        i += k
                        continue
                    add_err(errs, row, f, E_INVALID_SHIFT, i, c)
                    nerr += 1
                    e = 0
                    i += 1
                elif e & F_ERROR:
                    add_err(errs, row, f, e & 0xFF, i, c)
                    nerr += 1
                    e = 0
                    i += 1
                else:
                    if (e & F_MERGE) and i + 1 < L and (p0[i + 1] == t.mark0 or p0[i + 1] == t.mark1):
                        e2 = t.merge[c * 2 + (1 if p0[i + 1] == t.mark1 else 0)]
                        if e2 != 0:
                            e = e2
                            i += 1
                    i += 1
                    emit = True
            else:
                # double-byte characters whose entry holds their UTF-8 (padding U+3000 included)
                while i + 1 < L:
                    e = dbl[(<Py_ssize_t>p0[i] << 8) | p0[i + 1]]
                    if e & (F_ERROR | F_LONG | F_SHIFT):
                        break
                    i += 2
                    if (e & F_SPACE) == 0:
                        ikou_store32(o, e)
                        o += (e >> 24) & 3
                        last = o
                    elif not (trim_left and o == base):
                        ikou_store32(o, e)
                        o += (e >> 24) & 3
                if i >= L:
                    break
                c = p0[i]
                if shift_first[c]:
                    k = match_seq(t.si_b, t.si_l, t.n_si, p0, i, L)
                    if k:
                        if dbcs:
                            add_err(errs, row, f, E_SHIFT_IN_DBCS, i, seq_value(p0 + i, k))
                            nerr += 1
                            if replace:
                                memcpy(o, f.repl, f.repl_len)
                                o += f.repl_len
                                last = o
                        i += k
                        continue
                    k = match_seq(t.so_b, t.so_l, t.n_so, p0, i, L)
                    if k:
                        if dbcs:
                            add_err(errs, row, f, E_SHIFT_IN_DBCS, i, seq_value(p0 + i, k))
                            nerr += 1
                            if replace:
                                memcpy(o, f.repl, f.repl_len)
                                o += f.repl_len
                                last = o
                        else:
                            dstate = False
                            retry = 0
                        i += k
                        continue
                if i + 1 >= L:
                    add_err(errs, row, f, E_CUT_DOUBLE_BYTE, i, c)
                    nerr += 1
                    e = 0
                    i += 1
                else:
                    e = dbl[(<Py_ssize_t>c << 8) | p0[i + 1]]
                    if (e & (F_ERROR | F_LONG)) == 0:
                        i += 2
                        if (e & F_SPACE) == 0:
                            ikou_store32(o, e)
                            o += (e >> 24) & 3
                            last = o
                        elif not (trim_left and o == base):
                            ikou_store32(o, e)
                            o += (e >> 24) & 3
                        continue
                    if e & F_ERROR:
                        if (not dbcs and shift_first[p0[i + 1]]
                                and match_seq(t.so_b, t.so_l, t.n_so, p0, i + 1, L)):
                            add_err(errs, row, f, E_ODD_DBCS_BYTES, i, c)
                            i += 1
                        else:
                            add_err(errs, row, f, e & 0xFF, i, (<int64_t>c << 8) | p0[i + 1])
                            i += 2
                        nerr += 1
                        e = 0
                    else:
                        i += 2
                        emit = True
            if not emit:
                # an error was reported
                if replace:
                    memcpy(o, f.repl, f.repl_len)
                    o += f.repl_len
                    last = o
                continue
            if e & F_SPACE:
                if trim_left and o == base:
                    continue
            if e & F_LONG:
                idx = e & 0xFFFFFF
                memcpy(o, t.blob + t.long_off[idx], t.long_len[idx])
                o += t.long_len[idx]
            else:
                ikou_store32(o, e)
                o += (e >> 24) & 3
            if not (e & F_SPACE):
                last = o
        if dstate and not start_double and shift_at >= 0:
            k = match_seq(t.si_b, t.si_l, t.n_si, p0, shift_at, L)
            add_err(errs, row, f, E_UNTERMINATED_SHIFT, shift_at, seq_value(p0 + shift_at, k))
            nerr += 1
            if replace:
                memcpy(o, f.repl, f.repl_len)
                o += f.repl_len
                last = o
        end_text(col, offs, row, f, errs, nerr, replace, base, last, o, trim_right)
    return 0


# COMP-3 byte -> its two digits' value (0-99), or 0xFF when a nibble is not a digit
cdef uint8_t _PK2[256]
for _b in range(256):
    _PK2[_b] = (_b >> 4) * 10 + (_b & 15) if (_b >> 4) <= 9 and (_b & 15) <= 9 else 0xFF


cdef inline ikou_i128 pow10(int k) noexcept nogil:
    cdef ikou_i128 m = 1
    cdef int i
    for i in range(k):
        m *= 10
    return m


cdef int k_binary(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1,
                  FSpec *f, Col *col, Errs *errs) except -1 nogil:
    """Two's complement (signed) or unsigned integers of 2, 4 or 8 bytes, either byte order: one
    load and a byte swap, 64-bit arithmetic (128 only for a scaled value)."""
    cdef Py_ssize_t row
    cdef int i, L = f.length, sh = 64 - 8 * f.length
    cdef bint little = f.little, is_signed = f.is_signed, has_limit = f.has_limit
    cdef bint scaled = f.scale != 0, fast = L == 2 or L == 4 or L == 8
    cdef uint64_t limit = f.limit
    cdef const uint8_t *p
    cdef uint64_t u, mag
    cdef int64_t sv
    cdef ikou_i128 mult = pow10(f.mul_exp)
    cdef int64_t *out64 = <int64_t *>col.data.ptr
    cdef char *out128 = col.data.ptr
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        if fast:
            u = ikou_load_uint(p, L, little)
        else:
            u = 0
            if little:
                for i in range(L - 1, -1, -1):
                    u = (u << 8) | p[i]
            else:
                for i in range(L):
                    u = (u << 8) | p[i]
        if is_signed:
            # sign-extended from 8 * L bits
            sv = (<int64_t>(u << sh)) >> sh if sh else <int64_t>u
            mag = (0 - <uint64_t>sv) if sv < 0 else <uint64_t>sv
        else:
            sv = <int64_t>u
            mag = u
        if has_limit and mag >= limit:
            add_err(errs, row, f, E_DIGITS_OVERFLOW, 0, 0)
            set_null(col, row)
            continue
        if not scaled:
            if not is_signed and L == 8 and (u >> 63):
                add_err(errs, row, f, E_INT_OVERFLOW, 0, p[0])
                set_null(col, row)
                continue
            out64[row] = sv
        elif is_signed:
            ikou_store128(out128 + 16 * row, <ikou_i128>sv * mult)
        else:
            ikou_store128(out128 + 16 * row, <ikou_i128>u * mult)
    return 0


cdef int k_float(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1,
                 FSpec *f, Col *col, Errs *errs) except -1 nogil:
    """COMP-1 / COMP-2: IBM hexadecimal floating point (short exact in float32 or an error;
    long rounded once to float64) or IEEE 754 (NaN / infinities are errors)."""
    cdef Py_ssize_t row
    cdef int i, L = f.length, fbits = 8 * L - 8
    cdef const uint8_t *p
    cdef uint64_t u, frac
    cdef int expo
    cdef double x
    cdef float fx
    cdef uint32_t u32
    cdef float *o32 = <float *>col.data.ptr
    cdef double *o64 = <double *>col.data.ptr
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        u = 0
        if f.little:
            for i in range(L - 1, -1, -1):
                u = (u << 8) | p[i]
        else:
            for i in range(L):
                u = (u << 8) | p[i]
        if f.ibm:
            frac = u & ((<uint64_t>1 << fbits) - 1)
            expo = <int>((u >> fbits) & 0x7F)
            x = ldexp(<double><int64_t>frac, 4 * (expo - 64) - fbits)
            if u >> (8 * L - 1):
                x = -x
            if L == 4:
                if fabs(x) > FLT_MAX:
                    add_err(errs, row, f, E_FLOAT_RANGE, 0, 0)
                    set_null(col, row)
                    continue
                fx = <float>x
                if <double>fx != x:
                    add_err(errs, row, f, E_FLOAT_RANGE, 0, 0)
                    set_null(col, row)
                    continue
                o32[row] = fx
            else:
                o64[row] = x
        elif L == 4:
            u32 = <uint32_t>u
            if ((u32 >> 23) & 0xFF) == 0xFF:
                add_err(errs, row, f, E_NOT_FINITE, 0, 0)
                set_null(col, row)
                continue
            memcpy(&o32[row], &u32, 4)
        else:
            if ((u >> 52) & 0x7FF) == 0x7FF:
                add_err(errs, row, f, E_NOT_FINITE, 0, 0)
                set_null(col, row)
                continue
            memcpy(&o64[row], &u, 8)
    return 0


cdef inline uint8_t *put_utf8(uint8_t *o, uint32_t cp) noexcept nogil:
    if cp < 0x80:
        o[0] = <uint8_t>cp
        return o + 1
    if cp < 0x800:
        o[0] = <uint8_t>(0xC0 | (cp >> 6))
        o[1] = <uint8_t>(0x80 | (cp & 0x3F))
        return o + 2
    if cp < 0x10000:
        o[0] = <uint8_t>(0xE0 | (cp >> 12))
        o[1] = <uint8_t>(0x80 | ((cp >> 6) & 0x3F))
        o[2] = <uint8_t>(0x80 | (cp & 0x3F))
        return o + 3
    o[0] = <uint8_t>(0xF0 | (cp >> 18))
    o[1] = <uint8_t>(0x80 | ((cp >> 12) & 0x3F))
    o[2] = <uint8_t>(0x80 | ((cp >> 6) & 0x3F))
    o[3] = <uint8_t>(0x80 | (cp & 0x3F))
    return o + 4


cdef int k_national(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1,
                    FSpec *f, Col *col, Errs *errs) except -1 nogil:
    """PIC N USAGE NATIONAL: UTF-16 → UTF-8 string with the text options (trim of U+0020 /
    U+3000, blank / LOW-VALUE / HIGH-VALUE policies); every unpaired surrogate is an error."""
    cdef Py_ssize_t row
    cdef int k, nu = f.length >> 1, nerr, policy, code = 0, byte = 0
    cdef int hi_b = 1 if f.little else 0
    cdef const uint8_t *p
    cdef uint8_t *o
    cdef uint8_t *base
    cdef uint8_t *last
    cdef uint32_t u, u2, cp
    cdef bint trim_left = f.trim_left, trim_right = f.trim_right
    cdef int32_t *offs = <int32_t *>col.offsets.ptr
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        if f.low != P_DECODE or f.high != P_DECODE:
            policy = classify(p, f, False, &code, &byte)
            if policy != P_DECODE:
                apply_policy(policy, code, byte, col, row, f, errs)
                offs[row + 1] = <int32_t>col.data.size
                continue
        buf_reserve(&col.data, 2 * f.length + 8)
        base = <uint8_t *>col.data.ptr + col.data.size
        o = base
        last = base
        nerr = 0
        k = 0
        while k < nu:
            u = (<uint32_t>p[2 * k + hi_b] << 8) | p[2 * k + 1 - hi_b]
            if u < 0x80:
                if u == 0x20:
                    if not (trim_left and o == base):
                        o[0] = 0x20
                        o += 1
                else:
                    o[0] = <uint8_t>u
                    o += 1
                    last = o
                k += 1
                continue
            if 0xD800 <= u <= 0xDFFF:
                if u <= 0xDBFF and k + 1 < nu:
                    u2 = (<uint32_t>p[2 * k + 2 + hi_b] << 8) | p[2 * k + 3 - hi_b]
                    if 0xDC00 <= u2 <= 0xDFFF:
                        cp = 0x10000 + ((u - 0xD800) << 10) + (u2 - 0xDC00)
                        o = put_utf8(o, cp)
                        last = o
                        k += 2
                        continue
                add_err(errs, row, f, E_UNPAIRED_SURROGATE, 2 * k, u)
                nerr += 1
                k += 1
                continue
            if u == 0x3000:
                if not (trim_left and o == base):
                    o = put_utf8(o, u)
                k += 1
                continue
            o = put_utf8(o, u)
            last = o
            k += 1
        end_text(col, offs, row, f, errs, nerr, False, base, last, o, trim_right)
    return 0


cdef int k_digits(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1, FSpec *f,
                  Col *col, Errs *errs) except -1 nogil:
    """digits → string; bytes → binary (copied as is)."""
    cdef Py_ssize_t row, i, L = f.length
    cdef const uint8_t *p
    cdef int policy, code = 0, byte = 0
    cdef bint bad
    cdef bint is_bytes = f.kind == T_BYTES
    cdef bint policies = f.low != P_DECODE or f.high != P_DECODE or f.blank != P_DECODE
    cdef int32_t *offs = <int32_t *>col.offsets.ptr
    cdef uint8_t *o
    cdef uint8_t sp = 0x20
    if is_bytes and not policies and L >= 8 and L <= 16:
        # raw bytes of 8 to 16: two overlapping 8-byte copies a value
        o = <uint8_t *>col.data.ptr + col.data.size
        for row in range(r0, r1):
            p = buf + starts[row] + f.offset
            ikou_store64(o, ikou_load64(p))
            ikou_store64(o + L - 8, ikou_load64(p + L - 8))
            o += L
            offs[row + 1] = <int32_t>(o - <uint8_t *>col.data.ptr)
        col.data.size = o - <uint8_t *>col.data.ptr
        return 0
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        if policies and (p[0] == 0x00 or p[0] == 0xFF or p[0] == sp):
            policy = classify(p, f, True, &code, &byte)
            if policy != P_DECODE:
                apply_policy(policy, code, byte, col, row, f, errs)
                offs[row + 1] = <int32_t>col.data.size
                continue
        bad = False
        if not is_bytes:
            for i in range(L):
                if <unsigned int>(p[i] - 0x30) > 9:
                    add_err(errs, row, f, E_NOT_DIGITS, i, p[i])
                    set_null(col, row)
                    bad = True
                    break
        if not bad:
            memcpy(col.data.ptr + col.data.size, p, L)
            col.data.size += L
        offs[row + 1] = <int32_t>col.data.size
    return 0


cdef int k_int(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1, FSpec *f,
               Col *col, Errs *errs) except -1 nogil:
    """int → int64; decimal → decimal128 (same syntax: [spaces][sign]digits[spaces])."""
    cdef Py_ssize_t row
    cdef int i, L = f.length, policy, code = 0, byte = 0
    cdef const uint8_t *p
    cdef bint neg, is_dec = f.kind == T_DECIMAL
    cdef unsigned int d
    cdef uint64_t v, limit
    cdef ikou_i128 w, r
    cdef int64_t *out64 = <int64_t *>col.data.ptr
    cdef char *out128 = col.data.ptr
    cdef ikou_i128 mult = pow10(f.mul_exp)
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        policy = classify(p, f, True, &code, &byte)
        if policy != P_DECODE:
            apply_policy(policy, code, byte, col, row, f, errs)
            continue
        i = 0
        while i < L and p[i] == 0x20:
            i += 1
        neg = False
        if i < L and (p[i] == 0x2B or p[i] == 0x2D):
            neg = p[i] == 0x2D
            if neg and not f.is_signed:
                add_err(errs, row, f, E_INVALID_SIGN, i, p[i])
                set_null(col, row)
                continue
            i += 1
        if i >= L or <unsigned int>(p[i] - 0x30) > 9:
            if i >= L:
                i = L - 1
            add_err(errs, row, f, E_NOT_DIGITS, i, p[i])
            set_null(col, row)
            continue
        code = 0
        if is_dec:
            w = 0
            while i < L:
                d = p[i] - 0x30
                if d > 9:
                    break
                # at most `length` = precision digits: cannot exceed 10**precision - 1
                w = w * 10 + d
                i += 1
        else:
            limit = (<uint64_t>9223372036854775807) + (1 if neg else 0)
            v = 0
            while i < L:
                d = p[i] - 0x30
                if d > 9:
                    break
                if v > (limit - d) // 10:
                    code = E_INT_OVERFLOW
                    break
                v = v * 10 + d
                i += 1
        if code == 0:
            while i < L and p[i] == 0x20:
                i += 1
            if i < L:
                code = E_NOT_DIGITS
        if code != 0:
            add_err(errs, row, f, code, i, p[i])
            set_null(col, row)
            continue
        if is_dec:
            r = (-w if neg else w) * mult
            ikou_store128(out128 + 16 * row, r)
        else:
            out64[row] = <int64_t>(0 - v) if neg else <int64_t>v
    return 0


cdef inline int ascii_overpunch(uint8_t c, int *neg) noexcept nogil:
    """Digit of an ASCII zoned last byte (sign in neg), or -1."""
    if 0x30 <= c <= 0x39:
        neg[0] = 0
        return c - 0x30
    if c == 0x7B:  # {
        neg[0] = 0
        return 0
    if c == 0x7D:  # }
        neg[0] = 1
        return 0
    if 0x41 <= c <= 0x49:  # A-I
        neg[0] = 0
        return c - 0x40
    if 0x4A <= c <= 0x52:  # J-R
        neg[0] = 1
        return c - 0x49
    if 0x70 <= c <= 0x79:  # p-y
        neg[0] = 1
        return c - 0x70
    return -1


cdef int k_packed(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1,
                  FSpec *f, Col *col, Errs *errs) except -1 nogil:
    """COMP-3 → decimal128: two digits a byte through a table, the sign in the last nibble; up to
    17 digits in 64 bits, more in 128 (the first 18 in 64)."""
    cdef Py_ssize_t row
    cdef int i, L = f.length, nd = f.length - 1, policy, code = 0, byte = 0, bad_at
    cdef int n64 = nd if nd < 9 else 9
    cdef bint small = L <= 9, scaled = f.mul_exp != 0, is_signed = f.is_signed, neg
    cdef bint policies = f.low != P_DECODE or f.high != P_DECODE or f.blank != P_DECODE
    cdef const uint8_t *p
    cdef uint8_t c, v, hi, lo
    cdef uint64_t u
    cdef int64_t sv
    cdef ikou_i128 w
    cdef ikou_i128 mult = pow10(f.mul_exp)
    cdef char *out = col.data.ptr
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        c = p[0]
        if policies and (c == 0x00 or c == 0xFF or c == 0x20):
            policy = classify(p, f, True, &code, &byte)
            if policy != P_DECODE:
                apply_policy(policy, code, byte, col, row, f, errs)
                ikou_store128(out + 16 * row, 0)  # the buffer is not zeroed
                continue
        code = 0
        bad_at = 0
        u = 0
        i = 0
        while i < n64:
            v = _PK2[p[i]]
            if v == 0xFF:
                code = E_NOT_DIGITS
                bad_at = i
                break
            u = u * 100 + v
            i += 1
        w = u
        if not small:
            while code == 0 and i < nd:
                v = _PK2[p[i]]
                if v == 0xFF:
                    code = E_NOT_DIGITS
                    bad_at = i
                    break
                w = w * 100 + v
                i += 1
        neg = False
        if code == 0:
            c = p[nd]
            hi = c >> 4
            lo = c & 0x0F
            bad_at = nd
            if hi > 9:
                code = E_NOT_DIGITS
            elif (lo != 0xC and lo != 0xD and lo != 0xF) or (lo == 0xD and not is_signed):
                code = E_INVALID_SIGN
            else:
                neg = lo == 0xD
        if code != 0:
            add_err(errs, row, f, code, bad_at, p[bad_at])
            set_null(col, row)
            ikou_store128(out + 16 * row, 0)  # the buffer is not zeroed
            continue
        if small:
            u = u * 10 + hi
            sv = <int64_t>(0 - u) if neg else <int64_t>u
            if scaled:
                ikou_store128(out + 16 * row, <ikou_i128>sv * mult)
            else:
                ikou_store64(<uint8_t *>out + 16 * row, <uint64_t>sv)
                ikou_store64(<uint8_t *>out + 16 * row + 8, <uint64_t>(sv >> 63))
        else:
            w = w * 10 + hi
            if neg:
                w = -w
            if scaled:
                w = w * mult
            ikou_store128(out + 16 * row, w)
    return 0


cdef uint64_t _POW10_U64[20]
_POW10_U64[0] = 1
for _b in range(1, 20):
    _POW10_U64[_b] = _POW10_U64[_b - 1] * 10


cdef int k_zoned_ebcdic(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1,
                        FSpec *f, Col *col, Errs *errs) except -1 nogil:
    """EBCDIC zoned, sign overpunched on the last byte → decimal128: eight digits at a time (the
    last few through an 8-byte load that ends at the sign byte, its leading bytes read as zeros),
    the first 18 digits in 64 bits, any more in 128; the byte loop finds a bad byte."""
    cdef Py_ssize_t row
    cdef int i, r, L = f.length, nd = f.length - 1, policy, code = 0, byte = 0, bad_at
    cdef int n64 = nd if nd < 18 else 18
    cdef bint small = L <= 18, scaled = f.mul_exp != 0, is_signed = f.is_signed, neg, whole
    cdef bint strict_unsigned = f.strict_sign and not f.is_signed
    cdef bint policies = f.low != P_DECODE or f.high != P_DECODE or f.blank != P_DECODE
    cdef const uint8_t *p
    cdef uint8_t c, hi
    cdef unsigned int d
    cdef uint64_t u, x, mask
    cdef int64_t x8, sv
    cdef ikou_i128 w
    cdef ikou_i128 mult = pow10(f.mul_exp)
    cdef char *out = col.data.ptr
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        c = p[0]
        if policies and (c == 0x00 or c == 0xFF or c == 0x40):
            policy = classify(p, f, True, &code, &byte)
            if policy != P_DECODE:
                apply_policy(policy, code, byte, col, row, f, errs)
                ikou_store128(out + 16 * row, 0)  # the buffer is not zeroed
                continue
        code = 0
        bad_at = 0
        u = 0
        i = 0
        whole = True
        while i + 8 <= n64:
            x8 = ikou_ebcdic8(ikou_load64(p + i))
            if x8 < 0:
                whole = False
                break
            u = u * 100000000 + <uint64_t>x8
            i += 8
        r = n64 - i
        if whole and r > 0 and (i > 0 or starts[row] + f.offset + n64 >= 8):
            # the r digits left: the top bytes of the 8 that end at digit n64
            x = ikou_load64(p + n64 - 8)
            mask = ((<uint64_t>1) << (8 * (8 - r))) - 1
            x8 = ikou_ebcdic8((x & ~mask) | (0xF0F0F0F0F0F0F0F0ULL & mask))
            if x8 >= 0:
                u = u * _POW10_U64[r] + <uint64_t>x8
                i = n64
        while i < n64:
            d = p[i] - 0xF0
            if d > 9:
                code = E_NOT_DIGITS
                bad_at = i
                break
            u = u * 10 + d
            i += 1
        w = u
        if not small and code == 0:
            while i + 8 <= nd:
                x8 = ikou_ebcdic8(ikou_load64(p + i))
                if x8 < 0:
                    break
                w = w * 100000000 + x8
                i += 8
            while i < nd:
                d = p[i] - 0xF0
                if d > 9:
                    code = E_NOT_DIGITS
                    bad_at = i
                    break
                w = w * 10 + d
                i += 1
        neg = False
        if code == 0:
            c = p[nd]
            bad_at = nd
            hi = c >> 4
            if (c & 0x0F) > 9:
                code = E_NOT_DIGITS
            elif (hi != 0xC and hi != 0xD and hi != 0xF) or (hi == 0xC and strict_unsigned) or (
                    hi == 0xD and not is_signed):
                code = E_INVALID_SIGN
            else:
                neg = hi == 0xD
        if code != 0:
            add_err(errs, row, f, code, bad_at, p[bad_at])
            set_null(col, row)
            ikou_store128(out + 16 * row, 0)  # the buffer is not zeroed
            continue
        if small:
            u = u * 10 + (c & 0x0F)
            sv = <int64_t>(0 - u) if neg else <int64_t>u
            if scaled:
                ikou_store128(out + 16 * row, <ikou_i128>sv * mult)
            else:
                ikou_store64(<uint8_t *>out + 16 * row, <uint64_t>sv)
                ikou_store64(<uint8_t *>out + 16 * row + 8, <uint64_t>(sv >> 63))
        else:
            w = w * 10 + (c & 0x0F)
            if neg:
                w = -w
            if scaled:
                w = w * mult
            ikou_store128(out + 16 * row, w)
    return 0


cdef inline int64_t ebcdic_run(const uint8_t *p, int n, bint back_ok) noexcept nogil:
    """The value of n <= 18 EBCDIC digits (F0-F9), or -1: eight at a time, the last few through an
    8-byte load that ends with them when ``back_ok`` (the 8 bytes before p + n are in the block)."""
    cdef uint64_t u = 0, x, mask
    cdef int64_t x8
    cdef int i = 0, r, k
    cdef unsigned int d
    while i + 8 <= n:
        x8 = ikou_ebcdic8(ikou_load64(p + i))
        if x8 < 0:
            return -1
        u = u * 100000000 + <uint64_t>x8
        i += 8
    r = n - i
    if r > 0:
        if i > 0 or back_ok:
            x = ikou_load64(p + n - 8)
            mask = ((<uint64_t>1) << (8 * (8 - r))) - 1
            x8 = ikou_ebcdic8((x & ~mask) | (0xF0F0F0F0F0F0F0F0ULL & mask))
            if x8 < 0:
                return -1
            u = u * _POW10_U64[r] + <uint64_t>x8
        else:
            for k in range(i, n):
                d = p[k] - 0xF0
                if d > 9:
                    return -1
                u = u * 10 + d
    return <int64_t>u


cdef int k_zoned_packed(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1, FSpec *f,
                        Col *col, Errs *errs) except -1 nogil:
    cdef Py_ssize_t row
    cdef int i, L = f.length, policy, code = 0, byte = 0, neg = 0, digit, bad_at
    cdef int at = 0 if f.sign_leading else L - 1
    cdef bint strict_unsigned = f.strict_sign and not f.is_signed
    cdef uint8_t plus = 0x4E if f.ebcdic else 0x2B
    cdef uint8_t minus = 0x60 if f.ebcdic else 0x2D
    cdef const uint8_t *p
    cdef uint8_t c, hi, lo
    cdef ikou_i128 w
    cdef uint64_t u
    cdef unsigned int d
    cdef ikou_i128 mult = pow10(f.mul_exp)
    cdef bint scaled = f.mul_exp != 0
    cdef char *out = col.data.ptr
    cdef int64_t x8
    cdef int nd = L - 1, n64 = L - 1 if L - 1 < 18 else 18
    cdef bint fast = f.kind == T_ZONED and f.ebcdic and not f.sign_separate and not f.sign_leading
    # EBCDIC zoned with a separate or a leading sign, up to 18 digits: the sign, then the digits
    # at once; anything invalid goes to the byte loop below (which finds the error)
    cdef bint sfast = (f.kind == T_ZONED and f.ebcdic and (f.sign_separate or f.sign_leading)
                       and L <= 18)
    cdef bint separate = f.sign_separate, is_signed = f.is_signed, ok
    cdef int d0 = 1 if f.sign_leading else 0
    cdef uint64_t first
    cdef int64_t sv
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        policy = classify(p, f, True, &code, &byte)
        if policy != P_DECODE:
            apply_policy(policy, code, byte, col, row, f, errs)
            ikou_store128(out + 16 * row, 0)  # the buffer is not zeroed
            continue
        w = 0
        code = 0
        bad_at = 0
        neg = 0
        if sfast:
            c = p[at]
            ok = True
            first = 0
            if separate:
                if c == 0x60 and is_signed:
                    neg = 1
                elif c != 0x4E:
                    ok = False
            else:
                hi = c >> 4
                if (c & 0x0F) > 9 or (hi != 0xC and hi != 0xD and hi != 0xF) or (
                        hi == 0xC and strict_unsigned) or (hi == 0xD and not is_signed):
                    ok = False
                else:
                    neg = hi == 0xD
                    first = c & 0x0F
            if ok:
                x8 = ebcdic_run(p + d0, nd, starts[row] + f.offset + d0 + nd >= 8)
                if x8 >= 0:
                    u = <uint64_t>x8 if separate else first * _POW10_U64[nd] + <uint64_t>x8
                    sv = <int64_t>(0 - u) if neg else <int64_t>u
                    if scaled:
                        ikou_store128(out + 16 * row, <ikou_i128>sv * mult)
                    else:
                        ikou_store64(<uint8_t *>out + 16 * row, <uint64_t>sv)
                        ikou_store64(<uint8_t *>out + 16 * row + 8, <uint64_t>(sv >> 63))
                    continue
            neg = 0
        if fast:
            # EBCDIC zoned, sign overpunched on the last byte: eight digits at a time, the first
            # 18 digits in 64 bits, any more in 128
            u = 0
            i = 0
            while i + 8 <= n64 and i < 16:
                x8 = ikou_ebcdic8(ikou_load64(p + i))
                if x8 < 0:
                    break  # the byte loop finds the bad byte
                u = u * 100000000 + <uint64_t>x8
                i += 8
            while i < n64:
                d = p[i] - 0xF0
                if d > 9:
                    code = E_NOT_DIGITS
                    bad_at = i
                    break
                u = u * 10 + d
                i += 1
            w = u
            while code == 0 and i < nd:
                d = p[i] - 0xF0
                if d > 9:
                    code = E_NOT_DIGITS
                    bad_at = i
                    break
                w = w * 10 + d
                i += 1
            if code == 0:
                c = p[L - 1]
                bad_at = L - 1
                hi = c >> 4
                if (c & 0x0F) > 9:
                    code = E_NOT_DIGITS
                elif (hi != 0xC and hi != 0xD and hi != 0xF) or (hi == 0xC and strict_unsigned) or (
                        hi == 0xD and not f.is_signed):
                    code = E_INVALID_SIGN
                else:
                    neg = hi == 0xD
                    w = w * 10 + (c & 0x0F)
        elif f.kind == T_ZONED:
            for i in range(L):
                c = p[i]
                if i == at:
                    bad_at = i
                    if f.sign_separate:
                        if c == plus:
                            continue
                        if c == minus and f.is_signed:
                            neg = 1
                            continue
                        code = E_INVALID_SIGN
                        break
                    if f.ebcdic:
                        hi = c >> 4
                        if (c & 0x0F) > 9:
                            code = E_NOT_DIGITS
                            break
                        if (hi != 0xC and hi != 0xD and hi != 0xF) or (
                                hi == 0xC and strict_unsigned):
                            code = E_INVALID_SIGN
                            break
                        digit = c & 0x0F
                        neg = hi == 0xD
                    else:
                        digit = ascii_overpunch(c, &neg)
                        if digit < 0 or (strict_unsigned and (c < 0x30 or c > 0x39)):
                            code = E_INVALID_SIGN
                            break
                    if neg and not f.is_signed:
                        code = E_INVALID_SIGN
                        break
                    w = w * 10 + digit
                    continue
                if f.ebcdic:
                    if c < 0xF0 or c > 0xF9:
                        code = E_NOT_DIGITS
                        bad_at = i
                        break
                    w = w * 10 + (c & 0x0F)
                else:
                    if c < 0x30 or c > 0x39:
                        code = E_NOT_DIGITS
                        bad_at = i
                        break
                    w = w * 10 + (c - 0x30)
        else:
            u = 0
            for i in range(L):
                c = p[i]
                hi = c >> 4
                lo = c & 0x0F
                bad_at = i
                if hi > 9:
                    code = E_NOT_DIGITS
                    break
                if i < 9:  # the first 18 digits in 64 bits
                    u = u * 10 + hi
                    if i < L - 1:
                        if lo > 9:
                            code = E_NOT_DIGITS
                            break
                        u = u * 10 + lo
                    w = u
                    if i < L - 1:
                        continue
                else:
                    w = w * 10 + hi
                if i < L - 1:
                    if lo > 9:
                        code = E_NOT_DIGITS
                        break
                    w = w * 10 + lo
                else:
                    if (lo != 0xC and lo != 0xD and lo != 0xF) or (lo == 0xD and not f.is_signed):
                        code = E_INVALID_SIGN
                        break
                    neg = lo == 0xD
        if code != 0:
            add_err(errs, row, f, code, bad_at, p[bad_at])
            set_null(col, row)
            ikou_store128(out + 16 * row, 0)  # the buffer is not zeroed
            continue
        if neg:
            w = -w
        if scaled:
            w = w * mult
        ikou_store128(out + 16 * row, w)
    return 0


cdef inline int ed_strict(const uint8_t *p, FSpec *f, ikou_i128 *value, int *at) noexcept nogil:
    """One numeric-edited value against the picture ops: 0 (value set) or an error code (at)."""
    cdef int i, L = f.length, op
    cdef uint8_t c, fill
    cdef const uint8_t *m = f.ed_map
    cdef ikou_i128 w = 0
    cdef bint seen = False, sign_seen = False, blanked = False, neg = False, is_digit, sym
    cdef int fk = f.float_kind
    for i in range(L):
        op = f.ed_ops[i]
        c = m[p[i]]
        fill = f.ed_fills[i]
        is_digit = 0x30 <= c <= 0x39
        at[0] = i
        if op == ED_DIGIT or op == ED_Z or op == ED_STAR:
            if is_digit and not blanked:
                w = w * 10 + (c - 0x30)
                seen = True
            elif op != ED_DIGIT and c == fill and not seen:
                w = w * 10
            else:
                return E_NOT_DIGITS
        elif op == ED_LIT or op == ED_POINT:
            if c == f.ed_lits[i] and not blanked:
                pass
            elif fill != 0 and c == fill and not seen:
                if op == ED_POINT:
                    blanked = True
            else:
                return E_NOT_DIGITS
        elif op == ED_PLUS:
            if c != 0x2B and c != 0x2D:
                return E_INVALID_SIGN
            neg = c == 0x2D
        elif op == ED_MINUS:  # space or - (a + is accepted too: it states the same sign)
            if c != 0x20 and c != 0x2D and c != 0x2B:
                return E_INVALID_SIGN
            neg = c == 0x2D
        elif op == ED_CR or op == ED_DB:
            if c == f.ed_lits[i] and m[p[i + 1]] == f.ed_lits[i + 1]:
                neg = True
            elif not (c == 0x20 and m[p[i + 1]] == 0x20):
                if c == 0x20 or c == f.ed_lits[i]:
                    at[0] = i + 1
                return E_INVALID_SIGN
        elif op == ED_NEXT:
            pass
        else:
            sym = c == fk or ((fk == 0x2B or fk == 0x2D) and (c == 0x2B or c == 0x2D))
            if is_digit and op == ED_FLOAT and not blanked and (sign_seen or fk == 0x2D):
                w = w * 10 + (c - 0x30)
                seen = True
            elif c == 0x20 and not seen and not sign_seen:
                if op == ED_FLOAT:
                    w = w * 10
            elif sym and not seen and not sign_seen:
                sign_seen = True
                neg = c == 0x2D
                if op == ED_FLOAT:
                    w = w * 10
            else:
                return E_NOT_DIGITS if fk == 0x24 else E_INVALID_SIGN
            if i == f.float_end and not sign_seen and fk != 0x2D:
                return E_NOT_DIGITS if fk == 0x24 else E_INVALID_SIGN
    value[0] = -w if neg else w
    return 0


cdef inline int ed_free(const uint8_t *p, FSpec *f, ikou_i128 *value, int *at) noexcept nogil:
    """free_form: [spaces][sign]digits[.digits][sign][spaces], within the picture's digits."""
    cdef int i = 0, L = f.length, int_digits = 0, frac_digits = 0, k
    cdef const uint8_t *m = f.ed_map
    cdef uint8_t c
    cdef bint neg = False, point = False, any_digit = False
    cdef ikou_i128 w = 0
    while i < L and m[p[i]] == 0x20:
        i += 1
    if i < L and (m[p[i]] == 0x2B or m[p[i]] == 0x2D):
        if not f.ed_has_sign:
            at[0] = i
            return E_INVALID_SIGN
        neg = m[p[i]] == 0x2D
        i += 1
    while i < L:
        c = m[p[i]]
        if 0x30 <= c <= 0x39:
            if point:
                frac_digits += 1
                if frac_digits > f.ed_scale:
                    at[0] = i
                    return E_NOT_DIGITS
            else:
                int_digits += 1
                if int_digits > f.ed_digits - f.ed_scale:
                    at[0] = i
                    return E_NOT_DIGITS
            w = w * 10 + (c - 0x30)
            any_digit = True
        elif c == 0x2E and not point and f.ed_scale > 0:
            point = True
        else:
            break
        i += 1
    if not any_digit:
        at[0] = i if i < L else L - 1
        return E_NOT_DIGITS
    for k in range(f.ed_scale - frac_digits):
        w = w * 10
    if i < L and (m[p[i]] == 0x2B or m[p[i]] == 0x2D) and f.ed_has_sign and not neg:
        neg = m[p[i]] == 0x2D
        i += 1
    while i < L and m[p[i]] == 0x20:
        i += 1
    if i < L:
        at[0] = i
        return E_INVALID_SIGN if (m[p[i]] == 0x2B or m[p[i]] == 0x2D) else E_NOT_DIGITS
    value[0] = -w if neg else w
    return 0


cdef int k_edited(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1,
                  FSpec *f, Col *col, Errs *errs) except -1 nogil:
    """Numeric-edited PIC → decimal128: the field's text position by position (or free_form)."""
    cdef Py_ssize_t row
    cdef int policy, code = 0, byte = 0, at = 0
    cdef const uint8_t *p
    cdef ikou_i128 w
    cdef char *out = col.data.ptr
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        if f.ed_map[p[0]] == 0x20 or p[0] == 0x00 or p[0] == 0xFF:
            policy = P_DECODE
            if p[0] == 0x00 and all_eq(p, f.length, 0x00):
                policy, code, byte = f.low, E_LOW_VALUE, 0x00
            elif p[0] == 0xFF and all_eq(p, f.length, 0xFF):
                policy, code, byte = f.high, E_HIGH_VALUE, 0xFF
            elif f.ed_map[p[0]] == 0x20 and all_eq(p, f.length, p[0]):
                policy, code, byte = f.blank, E_BLANK_VALUE, p[0]
            if policy == P_ZERO:
                continue  # the buffer is zeroed
            if policy != P_DECODE:
                apply_policy(policy, code, byte, col, row, f, errs)
                continue
        at = 0
        if f.free_form:
            code = ed_free(p, f, &w, &at)
        else:
            code = ed_strict(p, f, &w, &at)
        if code != 0:
            add_err(errs, row, f, code, at, p[at])
            set_null(col, row)
            continue
        ikou_store128(out + 16 * row, w)
    return 0


cdef int k_date(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1, FSpec *f,
                Col *col, Errs *errs) except -1 nogil:
    cdef Py_ssize_t row
    cdef const uint8_t *p
    cdef int policy, code = 0, byte = 0, y = 0, m = 0, d = 0, bad
    cdef int32_t *out = <int32_t *>col.data.ptr
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        policy = classify(p, f, True, &code, &byte)
        if policy != P_DECODE:
            apply_policy(policy, code, byte, col, row, f, errs)
            continue
        bad = digit_run(p, 4, &y)
        if bad < 0:
            bad = digit_run(p + 4, 2, &m)
            if bad >= 0:
                bad += 4
        if bad < 0:
            bad = digit_run(p + 6, 2, &d)
            if bad >= 0:
                bad += 6
        if bad >= 0:
            add_err(errs, row, f, E_NOT_DIGITS, bad, p[bad])
            set_null(col, row)
            continue
        if y == 0 and m == 0 and d == 0:
            set_null(col, row)
            continue
        if y < 1 or m < 1 or m > 12 or d < 1 or d > days_in_month(y, m):
            add_err(errs, row, f, E_IMPOSSIBLE_DATE, 0, 0)
            set_null(col, row)
            continue
        out[row] = days_from_civil(y, m, d)
    return 0


cdef int k_wareki(const uint8_t *buf, const int64_t *starts, Py_ssize_t r0, Py_ssize_t r1, FSpec *f,
                  Col *cd, Col *cr, Col *cs, Errs *errs) except -1 nogil:
    cdef Py_ssize_t row
    cdef const uint8_t *p
    cdef int policy, code = 0, byte = 0, bad, k, ew = f.length - 6
    cdef int era = 0, yy = 0, mm = 0, dd = 0, y, status
    cdef int32_t days
    cdef bint keep_raw
    cdef int32_t *dates = <int32_t *>cd.data.ptr
    cdef int8_t *st = <int8_t *>cs.data.ptr
    cdef int32_t *offs = <int32_t *>cr.offsets.ptr
    for row in range(r0, r1):
        p = buf + starts[row] + f.offset
        keep_raw = True
        policy = classify(p, f, False, &code, &byte)
        if policy != P_DECODE:
            # LOW-VALUE / HIGH-VALUE: status blank (null policy) or an error
            set_null(cd, row)
            set_null(cr, row)
            if policy == P_ERROR:
                add_err(errs, row, f, code, 0, byte)
                set_null(cs, row)
            else:
                st[row] = ST_BLANK
            offs[row + 1] = <int32_t>cr.data.size
            continue
        status = -1
        if p[0] == 0x20 and all_eq(p, f.length, 0x20):
            if f.blank == P_ERROR:
                add_err(errs, row, f, E_BLANK_VALUE, 0, 0x20)
                status = -2
            else:
                status = ST_BLANK
        else:
            bad = digit_run(p, ew, &era)
            if bad < 0:
                for k in range(f.n_markers):
                    if memcmp(p + ew, f.markers + 6 * k, 6) == 0:
                        status = ST_UNKNOWN
                        break
                if status < 0:
                    bad = digit_run(p + ew, 2, &yy)
                    if bad < 0:
                        bad = digit_run(p + ew + 2, 2, &mm)
                        if bad >= 0:
                            bad += 2
                    if bad < 0:
                        bad = digit_run(p + ew + 4, 2, &dd)
                        if bad >= 0:
                            bad += 4
                    if bad >= 0:
                        bad += ew
            if bad >= 0:
                add_err(errs, row, f, E_NOT_DIGITS, bad, p[bad])
                status = -2
            elif status < 0:
                if f.zero_parts and (mm == 0 or dd == 0):
                    status = ST_UNKNOWN
                elif not f.era_valid[era]:
                    status = ST_IMPOSSIBLE
                else:
                    y = f.era_base[era] + yy - 1
                    if y < 1 or mm < 1 or mm > 12 or dd < 1 or dd > days_in_month(y, mm):
                        status = ST_IMPOSSIBLE
                    else:
                        days = days_from_civil(y, mm, dd)
                        if f.era_start[era] <= days <= f.era_end[era]:
                            status = ST_VALID
                            dates[row] = days
                        else:
                            status = ST_OUT_OF_ERA
        if status != ST_VALID:
            set_null(cd, row)
        if status == -2:
            set_null(cr, row)
            set_null(cs, row)
        else:
            st[row] = status
            memcpy(cr.data.ptr + cr.data.size, p, f.length)
            cr.data.size += f.length
        offs[row + 1] = <int32_t>cr.data.size
    return 0


# -- compiled plan ---------------------------------------------------------------------------
cdef uint32_t _entry(str s, list longs, dict long_index) except? 0:
    """A table entry: flags | UTF-8 length << 24 | up to 3 UTF-8 bytes, or F_LONG | index of a
    longer string in ``longs`` (added there once)."""
    cdef uint32_t c, flags
    if len(s) == 1:  # one character of the BMP (not a surrogate): encoded here
        c = ord(s)
        flags = F_SPACE if c == 0x20 or c == 0x3000 else 0
        if c < 0x80:
            return flags | (1u << 24) | c
        if c < 0x800:
            return flags | (2u << 24) | (0xC0 | (c >> 6)) | ((0x80 | (c & 0x3F)) << 8)
        if c < 0xD800 or 0xE000 <= c < 0x10000:
            return (flags | (3u << 24) | (0xE0 | (c >> 12)) | ((0x80 | ((c >> 6) & 0x3F)) << 8)
                    | ((0x80 | (c & 0x3F)) << 16))
    cdef bytes u = s.encode("utf-8")
    flags = F_SPACE if is_space_string(s) else 0
    if len(u) <= 3:
        return flags | (<uint32_t>len(u) << 24) | <uint32_t>int.from_bytes(u.ljust(3, b"\0"), "little")
    if u not in long_index:
        long_index[u] = len(longs)
        longs.append(u)
    return flags | F_LONG | <uint32_t>long_index[u]


cdef tuple _base_entries(double, leads):
    """(entries of ``double[lead << 8 | trail]`` for ``leads`` × 256 trails, long strings, their
    index): the 外字-free part of a table, shared by every plan of the process."""
    cdef Py_ssize_t li, trail
    cdef uint32_t[::1] out
    bl, bi, cache = [], {}, {}
    arr = np.zeros(len(leads) * 256, np.uint32)
    out = arr
    for li, lead in enumerate(leads):
        for trail in range(256):
            s = double[lead << 8 | trail]
            if isinstance(s, ErrorCode):
                out[li * 256 + trail] = F_ERROR | int(s)
            else:
                v = cache.get(s)
                if v is None:
                    v = cache[s] = _entry(s, bl, bi)
                out[li * 256 + trail] = v
    return arr, bl, bi


cdef class _CPlan:
    cdef FSpec *specs
    cdef int nspecs
    cdef TTable *tables
    cdef int ntables
    cdef list keep
    cdef public int ncols
    cdef object schema

    def __cinit__(self):
        self.specs = NULL
        self.tables = NULL

    def __dealloc__(self):
        free(self.specs)
        free(self.tables)

    def __init__(self, plan):
        cdef FSpec *s
        cdef int i, col = 0
        cdef const uint8_t[::1] u8
        cdef const int32_t[::1] i32
        self.keep = []
        self.schema = plan.schema
        fields = [(i, f) for i, f in enumerate(plan.fields) if f.type != "filler"]
        self.nspecs = len(fields)
        self.specs = <FSpec *>malloc(max(1, self.nspecs) * sizeof(FSpec))
        if self.specs == NULL:
            raise MemoryError()
        memset(self.specs, 0, max(1, self.nspecs) * sizeof(FSpec))
        variants = {}
        for k, (index, f) in enumerate(fields):
            o = f.options
            s = &self.specs[k]
            s.kind = TYPE_CODES[f.type]
            s.index = index
            s.offset = f.offset
            s.length = f.length
            s.on_error = ON_ERROR[o.get("on_error", "reject")]
            s.blank = POLICY.get(o.get("blank", "decode"), P_DECODE)
            s.low = POLICY[o.get("low_value", "decode")]
            s.high = POLICY[o.get("high_value", "decode")]
            s.col = col
            col += 3 if f.type == "wareki" else 1
            s.is_signed = o.get("signed", True)
            s.scale = o.get("scale", 0)
            s.precision = f.precision
            s.ebcdic = o.get("zone") == "ebcdic"
            s.ebcdic_digits = f.ebcdic_digits
            s.dbcs_only = f.type == "dbcs"
            s.start_double = f.type == "dbcs" or o.get("shift_state") == "double"
            s.little = o.get("byte_order") == "little"
            s.ibm = o.get("format") == "ibm"
            s.sign_leading = o.get("sign_position") == "leading"
            s.sign_separate = bool(o.get("sign_separate", False))
            s.strict_sign = bool(o.get("strict_sign", False))
            if f.type == "binary" and o["digits"] is not None:
                s.has_limit = 1
                s.limit = 10 ** o["digits"]
            s.mul_exp = -s.scale if s.scale < 0 else 0
            if f.type == "national":
                trim = TRIM[o["trim"]]
                s.trim_left = trim & 1
                s.trim_right = (trim & 2) >> 1
            if f.type == "edited":
                ops, lits, fills, digits, scale, float_end, float_kind = parse_picture(o["picture"])
                ed_map = EDITED_EBCDIC_MAP if f.encoding != "cp932" else bytes(range(256))
                self.keep.extend([ops, lits, fills, ed_map])
                s.ed_ops = ops
                s.ed_lits = lits
                s.ed_fills = fills
                s.ed_map = ed_map
                s.float_end = float_end
                s.float_kind = float_kind
                s.free_form = o["free_form"]
                s.ed_digits = digits
                s.ed_scale = scale
                s.ed_has_sign = float_kind in (0x2B, 0x2D) or any(
                    op in (6, 7, 8, 9) for op in ops)
                if o["blank"] == "zero":
                    s.blank = P_ZERO
            if f.type in ("text", "dbcs"):
                trim = TRIM[o["trim"]]
                s.trim_left = trim & 1
                s.trim_right = (trim & 2) >> 1
                key = (plan.field_fallback(f), o["ascii_narrow"], o["kana_widen"], f.encoding)
                if key not in variants:
                    variants[key] = len(variants)
                s.table = variants[key]
                repl = (o["replacement"] or "").encode("utf-8")
                self.keep.append(repl)
                s.repl = repl
                s.repl_len = len(repl)
            if f.type == "wareki":
                zero = np.zeros(100, np.int32)
                start, end, base = zero.copy(), zero.copy(), zero.copy()
                valid = np.zeros(100, np.uint8)
                for code, st, en, b in o["eras"]:
                    start[code], end[code], base[code], valid[code] = st, en, b, 1
                self.keep.extend([start, end, base, valid])
                i32 = start
                s.era_start = &i32[0]
                i32 = end
                s.era_end = &i32[0]
                i32 = base
                s.era_base = &i32[0]
                u8 = valid
                s.era_valid = &u8[0]
                markers = "".join(o["unknown"]).encode("ascii") + b"\0"
                self.keep.append(markers)
                s.markers = markers
                s.n_markers = len(o["unknown"])
                s.zero_parts = o["unknown_zero_parts"]
        self.ncols = col
        self.ntables = len(variants)
        self.tables = <TTable *>malloc(max(1, self.ntables) * sizeof(TTable))
        if self.tables == NULL:
            raise MemoryError()
        for key, ti in variants.items():
            self._build_table(&self.tables[ti], plan.text_table(*key))

    cdef _build_table(self, TTable *t, table):
        cdef const uint32_t[::1] u32
        cdef const uint8_t[::1] u8
        longs, long_index = [], {}
        single = np.zeros(256, np.uint32)
        lead_idx = np.zeros(256, np.uint8)
        mixed = hasattr(table, "shift_in")
        t.mixed = mixed
        t.plain = NULL
        t.has_space8 = 0
        t.space8 = 0
        if mixed:
            lead_idx = np.arange(256, dtype=np.uint8)
            leads = list(range(256))
            base = _BASE_C.get(table.base_key)
            if base is None:
                bdbl, bl, bi = _base_entries(table.base_double, leads)
                for lead in table.shift_first:
                    bdbl[lead << 8:(lead + 1) << 8] |= F_SHIFT
                base = _BASE_C[table.base_key] = (bdbl, bl, bi)
        else:
            leads = [b for b in range(256) if table.single[b] is None]
            base = _BASE_C.get(table.base_key)
            if base is None:
                base = _BASE_C[table.base_key] = _base_entries(table.base_double, leads)
        # the shared double-byte entries first (their long strings keep their indexes)
        longs.extend(base[1])
        long_index.update(base[2])
        for b in range(256):
            s = table.single[b]
            if s is None:
                single[b] = F_LEAD
                if not mixed:
                    lead_idx[b] = leads.index(b)
            elif isinstance(s, ErrorCode):
                single[b] = F_ERROR | int(s)
            else:
                single[b] = _entry(s, longs, long_index)
        if mixed:
            merge = np.zeros(512, np.uint32)
            t.mark0, t.mark1 = table.marks
            for key, s in table.merge.items():
                kana, mark = key >> 8, key & 0xFF
                merge[kana * 2 + (1 if mark == table.marks[1] else 0)] = _entry(s, longs, long_index)
                single[kana] |= F_MERGE
            shift_first = np.zeros(256, np.uint8)
            for b in table.shift_first:
                shift_first[b] = 1
            self.keep.append(shift_first)
            u8 = shift_first
            t.shift_first = &u8[0]
            t.n_si = len(table.shift_in)
            t.n_so = len(table.shift_out)
            for k, q in enumerate(table.shift_in):
                t.si_l[k] = len(q)
                t.si_b[2 * k] = q[0]
                t.si_b[2 * k + 1] = q[len(q) - 1]
            for k, q in enumerate(table.shift_out):
                t.so_l[k] = len(q)
                t.so_b[2 * k] = q[0]
                t.so_b[2 * k + 1] = q[len(q) - 1]
            dbl = base[0].copy() if table.gaiji else base[0]
            for code, s in table.gaiji.items():
                dbl[code] = _entry(s, longs, long_index) | (
                    F_SHIFT if code >> 8 in table.shift_first else 0)
            # single bytes that decode to one ASCII byte with nothing else to do
            plain = np.full(256, 0x80, np.uint8)
            for b in range(256):
                e = int(single[b])
                if (e & (F_LEAD | F_ERROR | F_MERGE | F_LONG)) == 0 and (e >> 24) & 3 == 1:
                    plain[b] = e & 0xFF
            self.keep.append(plain)
            u8 = plain
            t.plain = &u8[0]
            spaces = [b for b in range(256) if plain[b] == 0x20]
            t.has_space8 = bool(spaces)
            t.space8 = spaces[0] * 0x0101010101010101 if spaces else 0
        else:
            merge = np.zeros(128, np.uint32)
            for key, s in table.merge.items():
                kana, mark = key >> 8, key & 0xFF
                merge[(kana - 0xA0) * 2 + (mark - 0xDE)] = _entry(s, longs, long_index)
                single[kana] |= F_MERGE
            dbl = base[0].copy() if table.gaiji else base[0]
            for code, s in table.gaiji.items():
                dbl[int(lead_idx[code >> 8]) * 256 + (code & 0xFF)] = _entry(s, longs, long_index)
        blob = b"".join(longs) + b"\0"
        long_off = np.zeros(len(longs) + 1, np.uint32)
        long_len = np.zeros(len(longs) + 1, np.uint32)
        pos = 0
        for k, u in enumerate(longs):
            long_off[k] = pos
            long_len[k] = len(u)
            pos += len(u)
        self.keep.extend([single, lead_idx, merge, dbl, blob, long_off, long_len])
        u32 = single
        t.single = &u32[0]
        u32 = dbl
        t.dbl = &u32[0]
        u32 = merge
        t.merge = &u32[0]
        u8 = lead_idx
        t.lead_idx = &u8[0]
        u32 = long_off
        t.long_off = &u32[0]
        u32 = long_len
        t.long_len = &u32[0]
        t.blob = blob
        t.max_exp = max([3] + [len(u) for u in longs])


# encoding name, narrowing, widening -> (double-byte entries, long strings, their index):
# the double-byte table of an encoding is built once per process, 外字 rows patched per plan
_BASE_C = {}


cdef _CPlan _get_cplan(plan):
    return plan.cached("compiled", _CPlan)


# -- entry point -----------------------------------------------------------------------------
cdef void compact_col(Col *c, Py_ssize_t n, Py_ssize_t width, const uint8_t *keep) noexcept nogil:
    """Keep, in place and in order, the rows ``r`` of a column whose ``keep[r]`` is set: its
    values (fixed ``width`` bytes, or offsets + data), validity bits and null count."""
    cdef Py_ssize_t r, a, k = 0, nulls = 0
    cdef int32_t *o
    cdef int32_t s, e, pos = 0
    cdef uint8_t *v = <uint8_t *>c.valid.ptr
    if c.nulls:
        # bit k is written only after bits >= k were read (k <= r)
        for r in range(n):
            if keep[r]:
                if (v[r >> 3] >> (r & 7)) & 1:
                    v[k >> 3] |= <uint8_t>(1 << (k & 7))
                else:
                    v[k >> 3] &= <uint8_t>~(1 << (k & 7))
                    nulls += 1
                k += 1
        while k & 7:  # the last byte's bits past the rows set, as a fresh buffer has them
            v[k >> 3] |= <uint8_t>(1 << (k & 7))
            k += 1
        c.nulls = nulls
    if c.offsets.ptr != NULL:
        o = <int32_t *>c.offsets.ptr
        k = 0
        for r in range(n):
            if keep[r]:
                s = o[r]  # rewritten only when every row before was kept: then unchanged
                e = o[r + 1]
                if s != pos:
                    memmove(c.data.ptr + pos, c.data.ptr + s, e - s)
                pos += e - s
                k += 1
                o[k] = pos
        c.data.size = pos
        return
    k = 0
    r = 0
    while r < n:
        if not keep[r]:
            r += 1
            continue
        a = r
        while r < n and keep[r]:
            r += 1
        if k != a:
            memmove(c.data.ptr + k * width, c.data.ptr + a * width, (r - a) * width)
        k += r - a


def decode_block(buf, starts, plan, drop_rejected=False) -> DecodeResult:
    """Decode the records of ``buf`` that begin at ``starts`` with ``plan`` (compiled).

    ``drop_rejected``: the batch holds only the rows without a rejecting error (compacted in
    place, no copy); errors and ``bad_rows`` still number the rows of ``starts``."""
    mv, st = check_block(buf, starts, plan)
    cdef _CPlan cp = _get_cplan(plan)
    cdef const uint8_t[::1] bv = mv
    cdef const int64_t[::1] sv = st
    cdef Py_ssize_t n = sv.shape[0]
    cdef const uint8_t *bp = &bv[0] if bv.shape[0] else NULL
    cdef const int64_t *sp = &sv[0] if n else NULL
    cdef Col *cols = <Col *>malloc(max(1, cp.ncols) * sizeof(Col))
    cdef Errs errs
    cdef FSpec *f
    cdef int k, c
    cdef Py_ssize_t vbytes = (n + 7) >> 3
    cdef Py_ssize_t text_cap, r0, r1, r2, r, j, e0, max_ebc = 1, chunk, rl
    cdef bint wide
    cdef int64_t *fsp
    cdef const uint8_t[::1] emv = EBCDIC_DIGIT_MAP
    cdef const uint8_t *ebc_map = &emv[0]
    cdef uint8_t *ebc_buf = NULL
    cdef int64_t *ebc_starts = NULL
    cdef Py_ssize_t m
    cdef uint8_t[::1] kv
    cdef Py_ssize_t[::1] wv
    if cols == NULL:
        raise MemoryError()
    for k in range(cp.nspecs):
        if cp.specs[k].ebcdic_digits and cp.specs[k].length > max_ebc:
            max_ebc = cp.specs[k].length
    ebc_buf = <uint8_t *>malloc(CHUNK_ROWS * max_ebc)
    ebc_starts = <int64_t *>malloc(CHUNK_ROWS * sizeof(int64_t))
    if ebc_buf == NULL or ebc_starts == NULL:
        free(ebc_buf)
        free(ebc_starts)
        free(cols)
        raise MemoryError()
    memset(cols, 0, max(1, cp.ncols) * sizeof(Col))
    errs.items = NULL
    errs.n = 0
    errs.cap = 0
    try:
        for k in range(cp.nspecs):
            f = &cp.specs[k]
            for c in range(f.col, f.col + (3 if f.kind == T_WAREKI else 1)):
                buf_init(&cols[c].valid, vbytes, False)
                memset(cols[c].valid.ptr, 0xFF, cols[c].valid.cap)
            c = f.col
            if f.kind == T_TEXT or f.kind == T_DBCS or f.kind == T_NATIONAL:
                buf_init(&cols[c].offsets, (n + 1) * 4, True)
                text_cap = n * f.length + n * f.length // 2 + 64
                buf_init(&cols[c].data, text_cap, False)
            elif f.kind == T_DIGITS or f.kind == T_BYTES:
                buf_init(&cols[c].offsets, (n + 1) * 4, True)
                buf_init(&cols[c].data, n * f.length, False)
            elif f.kind == T_INT or (f.kind == T_BINARY and f.scale == 0):
                buf_init(&cols[c].data, n * 8, True)
            elif f.kind == T_DATE:
                buf_init(&cols[c].data, n * 4, True)
            elif f.kind == T_FLOAT:
                buf_init(&cols[c].data, n * f.length, True)
            elif f.kind == T_WAREKI:
                buf_init(&cols[c].data, n * 4, True)
                buf_init(&cols[c + 1].offsets, (n + 1) * 4, True)
                buf_init(&cols[c + 1].data, n * f.length, False)
                buf_init(&cols[c + 2].data, n, True)
            elif f.kind == T_ZONED or f.kind == T_PACKED:
                # every row written (zero when not decoded): no need to clear the buffer first
                buf_init(&cols[c].data, n * 16, False)
            else:  # decimal, edited
                buf_init(&cols[c].data, n * 16, True)
        # rows per chunk: wide records (COBOL records of many numeric fields) in chunks of about
        # 16 KiB, so that the chunk stays in the first-level cache while every field runs over
        # it (a 1,500-byte record: 10 rows; measured best of 8-64 KiB); records up to 512 bytes
        # keep chunks of 256 rows
        chunk = CHUNK_ROWS
        rl = plan.record_length
        wide = rl > 512
        if wide:
            chunk = CHUNK_BYTES // plan.record_length
            if chunk < 8:
                chunk = 8
        if n * <Py_ssize_t>plan.record_length > INT32_MAX // 2:
            raise BlockError("block too large: at most about 1 GiB of records per call")
        with nogil:
            # rows in chunks (their records stay in cache), every field over each chunk
            r0 = 0
            while r0 < n:
                r1 = r0 + chunk if r0 + chunk < n else n
                if wide:
                    # the next chunk's records, line by line, while this one is decoded (its
                    # fields touch every line of a record: demand misses would come one by one)
                    r2 = r1 + chunk if r1 + chunk < n else n
                    for r in range(r1, r2):
                        for j in range(0, rl, 64):
                            ikou_prefetch(bp + sp[r] + j)
                for k in range(cp.nspecs):
                    f = &cp.specs[k]
                    c = f.col
                    if f.ebcdic_digits:
                        # EBCDIC numbers: the chunk's fields read as ASCII into scratch, errors
                        # then given the original bytes
                        fsp = ebc_starts - r0
                        for r in range(r0, r1):
                            fsp[r] = (r - r0) * f.length - f.offset
                            for j in range(f.length):
                                ebc_buf[(r - r0) * f.length + j] = ebc_map[bp[sp[r] + f.offset + j]]
                        e0 = errs.n
                        if f.kind == T_DIGITS:
                            k_digits(ebc_buf, fsp, r0, r1, f, &cols[c], &errs)
                        elif f.kind == T_INT or f.kind == T_DECIMAL:
                            k_int(ebc_buf, fsp, r0, r1, f, &cols[c], &errs)
                        elif f.kind == T_DATE:
                            k_date(ebc_buf, fsp, r0, r1, f, &cols[c], &errs)
                        else:
                            k_wareki(ebc_buf, fsp, r0, r1, f, &cols[c], &cols[c + 1],
                                     &cols[c + 2], &errs)
                        for j in range(e0, errs.n):
                            if (errs.items[j].code == E_NOT_DIGITS
                                    or errs.items[j].code == E_INVALID_SIGN
                                    or errs.items[j].code == E_INT_OVERFLOW
                                    or errs.items[j].code == E_BLANK_VALUE):
                                errs.items[j].value = bp[sp[errs.items[j].row] + errs.items[j].pos]
                    elif f.kind == T_TEXT and cp.tables[f.table].mixed:
                        k_mixed(bp, sp, r0, r1, f, &cp.tables[f.table], &cols[c], &errs)
                    elif f.kind == T_DBCS:
                        k_mixed(bp, sp, r0, r1, f, &cp.tables[f.table], &cols[c], &errs)
                    elif f.kind == T_BINARY:
                        k_binary(bp, sp, r0, r1, f, &cols[c], &errs)
                    elif f.kind == T_FLOAT:
                        k_float(bp, sp, r0, r1, f, &cols[c], &errs)
                    elif f.kind == T_EDITED:
                        k_edited(bp, sp, r0, r1, f, &cols[c], &errs)
                    elif f.kind == T_NATIONAL:
                        k_national(bp, sp, r0, r1, f, &cols[c], &errs)
                    elif f.kind == T_TEXT:
                        k_text(bp, sp, r0, r1, f, &cp.tables[f.table], &cols[c], &errs)
                    elif f.kind == T_DIGITS or f.kind == T_BYTES:
                        k_digits(bp, sp, r0, r1, f, &cols[c], &errs)
                    elif f.kind == T_INT or f.kind == T_DECIMAL:
                        k_int(bp, sp, r0, r1, f, &cols[c], &errs)
                    elif f.kind == T_DATE:
                        k_date(bp, sp, r0, r1, f, &cols[c], &errs)
                    elif f.kind == T_WAREKI:
                        k_wareki(bp, sp, r0, r1, f, &cols[c], &cols[c + 1], &cols[c + 2], &errs)
                    elif f.kind == T_PACKED:
                        k_packed(bp, sp, r0, r1, f, &cols[c], &errs)
                    elif f.kind == T_ZONED and f.ebcdic and not f.sign_separate and not f.sign_leading:
                        k_zoned_ebcdic(bp, sp, r0, r1, f, &cols[c], &errs)
                    else:
                        k_zoned_packed(bp, sp, r0, r1, f, &cols[c], &errs)
                r0 = r1
        m = n
        if drop_rejected and errs.n:
            keep = np.ones(n, np.uint8)
            kv = keep
            for j in range(errs.n):
                if errs.items[j].reject:
                    kv[errs.items[j].row] = 0
            m = int(keep.sum())
            if m < n:
                widths = np.zeros(max(1, cp.ncols), np.intp)
                wv = widths
                for c in range(cp.ncols):
                    typ = cp.schema.field(c).type
                    if cols[c].offsets.ptr == NULL:
                        wv[c] = 1 if pa.types.is_dictionary(typ) else typ.bit_width // 8
                with nogil:
                    for c in range(cp.ncols):
                        compact_col(&cols[c], n, wv[c], &kv[0])
        arrays = []
        for c in range(cp.ncols):
            arrays.append(_to_arrow(&cols[c], cp.schema.field(c).type, m))
        batch = make_batch(arrays, cp.schema, m)
        errors = _errors(&errs)
    finally:
        for c in range(cp.ncols):
            buf_free(&cols[c].data)
            buf_free(&cols[c].offsets)
            buf_free(&cols[c].valid)
        free(cols)
        free(errs.items)
        free(ebc_buf)
        free(ebc_starts)
    return DecodeResult(batch, errors)


cdef object _to_arrow(Col *c, typ, Py_ssize_t n):
    c.valid.size = (n + 7) >> 3
    validity = wrap(&c.valid) if c.nulls else None
    if c.offsets.ptr != NULL:
        c.offsets.size = (n + 1) * 4
        return pa.Array.from_buffers(typ, n, [validity, wrap(&c.offsets), wrap(&c.data)],
                                     null_count=c.nulls)
    if pa.types.is_dictionary(typ):
        c.data.size = n
        indices = pa.Array.from_buffers(pa.int8(), n, [validity, wrap(&c.data)], null_count=c.nulls)
        return pa.DictionaryArray.from_arrays(indices, _STATUS_DICT)
    c.data.size = n * (typ.bit_width // 8)
    return pa.Array.from_buffers(typ, n, [validity, wrap(&c.data)], null_count=c.nulls)


cdef object _errors(Errs *errs):
    cdef Py_ssize_t i, m = errs.n
    row = np.empty(m, np.int64)
    field = np.empty(m, np.int32)
    code = np.empty(m, np.int32)
    pos = np.empty(m, np.int32)
    value = np.empty(m, np.int64)
    reject = np.empty(m, np.bool_)
    cdef int64_t[::1] vr = row, vv = value
    cdef int32_t[::1] vf = field, vc = code, vp = pos
    cdef uint8_t[::1] vj = reject.view(np.uint8)
    for i in range(m):
        vr[i] = errs.items[i].row
        vf[i] = errs.items[i].field
        vc[i] = errs.items[i].code
        vp[i] = errs.items[i].pos
        vv[i] = errs.items[i].value
        vj[i] = errs.items[i].reject
    return DecodeErrors(row, field, code, pos, value, reject)
