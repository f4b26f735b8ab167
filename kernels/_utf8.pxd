# UTF-8 helpers shared by the kernels that read Arrow string buffers (``_compare``,
# ``_normalize``): ``cdef inline`` functions, so each kernel that cimports them compiles its own
# copy (no call across modules, and no import of ``_utf8`` at run time: there is no such module).
#
#     from kernels._utf8 cimport utf8_decode
#
# The cimport names the source folder, not ``ikou.kernels``: the folder ``kernels/`` becomes the
# package ``ikou.kernels`` only through setup.py's ``package_dir``, while Cython looks cimports up
# in the source tree (a relative ``from ._utf8 cimport`` would search ``ikou/kernels/_utf8.pxd``).

from libc.stdint cimport int32_t, int64_t, uint8_t


cdef inline int32_t utf8_decode(const uint8_t* s, int64_t n, int64_t* pos) noexcept nogil:
    """Code point at ``s[pos[0]]``; advances ``pos``.

    Malformed UTF-8 reads as U+FFFD, one per maximal ill-formed subpart (the policy of
    Python's ``errors="replace"``), so the twin decodes the same bytes the same way.
    """
    cdef int64_t i = pos[0]
    cdef uint8_t b = s[i], c
    cdef int32_t cp
    cdef int k, j
    cdef uint8_t lo = 0x80, hi = 0xBF
    if b < 0x80:
        pos[0] = i + 1
        return b
    if b >= 0xC2 and b <= 0xDF:
        k = 1
        cp = b & 0x1F
    elif b >= 0xE0 and b <= 0xEF:
        k = 2
        cp = b & 0x0F
        if b == 0xE0:
            lo = 0xA0
        elif b == 0xED:
            hi = 0x9F
    elif b >= 0xF0 and b <= 0xF4:
        k = 3
        cp = b & 0x07
        if b == 0xF0:
            lo = 0x90
        elif b == 0xF4:
            hi = 0x8F
    else:
        pos[0] = i + 1
        return 0xFFFD
    for j in range(1, k + 1):
        if i + j >= n:
            pos[0] = i + j
            return 0xFFFD
        c = s[i + j]
        if c < lo or c > hi:
            pos[0] = i + j
            return 0xFFFD
        lo = 0x80
        hi = 0xBF
        cp = (cp << 6) | (c & 0x3F)
    pos[0] = i + k + 1
    return cp
