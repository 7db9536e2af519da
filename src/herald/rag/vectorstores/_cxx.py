"""Keep usearch from breaking llama.cpp in the same process.

The usearch wheel links its own copy of libstdc++ statically and exports the ``std::locale``
facet ids as GNU unique symbols, which the dynamic linker binds process-wide even for a module
loaded ``RTLD_LOCAL``. If usearch is imported before the system libstdc++ has built its classic
locale, that locale later picks up usearch's ids, and llama.cpp's tokenizer set-up fails with
``std::bad_cast`` ("Failed to load model from file" for every GGUF loaded afterwards).

Building the system libstdc++'s classic locale first (``std::locale::classic()``) assigns its
facet ids before usearch loads, and both libraries then work. Call :func:`pin_classic_locale`
before importing usearch; it is idempotent, quick, and a no-op where libstdc++ is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger("herald.rag.vectorstores")


@functools.cache
def pin_classic_locale() -> bool:
    """Build the system libstdc++'s classic ``std::locale``; True when it was done."""
    name = ctypes.util.find_library("stdc++") or "libstdc++.so.6"
    try:
        lib = ctypes.CDLL(name)
        classic = lib._ZNSt6locale7classicEv  # std::locale::classic()
    except (OSError, AttributeError) as exc:  # not glibc/libstdc++ (macOS, musl): nothing to do
        log.debug("libstdc++ classic locale not pinned: %s", exc)
        return False
    classic.restype = ctypes.c_void_p
    classic.argtypes = []
    classic()
    return True
