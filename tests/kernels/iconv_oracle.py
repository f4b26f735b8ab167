"""glibc's iconv through ctypes: the independent oracle for the IBM host code pages.

Nothing is installed: libc's ``iconv_open`` / ``iconv`` and glibc's gconv modules (IBM930,
IBM939, IBM1390, IBM1399) are on the machine. Used by the tests only, never by ikou.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.iconv_open.restype = ctypes.c_void_p
_libc.iconv_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libc.iconv.restype = ctypes.c_size_t
_libc.iconv.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p),
                        ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_char_p),
                        ctypes.POINTER(ctypes.c_size_t)]
_libc.iconv_close.argtypes = [ctypes.c_void_p]
_FAIL = ctypes.c_size_t(-1).value


def available(charset: str) -> bool:
    cd = _libc.iconv_open(b"UTF-32LE", charset.encode())
    if cd in (None, ctypes.c_void_p(-1).value):
        return False
    _libc.iconv_close(cd)
    return True


def decode_records(charset: str, records: list[bytes]) -> list[str | None]:
    """Each record decoded on its own by glibc (``None`` where iconv refuses it or leaves input
    unconverted), the converter's shift state flushed and reset after each record."""
    cd = _libc.iconv_open(b"UTF-32LE", charset.encode())
    if cd in (None, ctypes.c_void_p(-1).value):
        raise OSError(f"iconv_open({charset}) failed")
    size = 4096
    obuf = ctypes.create_string_buffer(size)
    base = ctypes.addressof(obuf)
    p_in, n_in = ctypes.c_char_p(), ctypes.c_size_t()
    p_out, n_out = ctypes.c_char_p(), ctypes.c_size_t()
    r_in, r_nin, r_out, r_nout = (ctypes.byref(p_in), ctypes.byref(n_in), ctypes.byref(p_out),
                                  ctypes.byref(n_out))
    iconv = _libc.iconv
    out: list[str | None] = []
    try:
        for rec in records:
            p_in.value = rec
            n_in.value = len(rec)
            p_out.value = None
            ctypes.memmove(ctypes.addressof(p_out), ctypes.byref(ctypes.c_void_p(base)), 8)
            n_out.value = size
            r = iconv(cd, r_in, r_nin, r_out, r_nout)
            bad = r == _FAIL or n_in.value != 0
            if not bad:
                bad = iconv(cd, None, None, r_out, r_nout) == _FAIL
            if bad:
                iconv(cd, None, None, None, None)
                out.append(None)
            else:
                out.append(ctypes.string_at(base, size - n_out.value).decode("utf-32-le"))
        return out
    finally:
        _libc.iconv_close(cd)


__all__ = ["available", "decode_records", "errno"]
