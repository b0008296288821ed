# SPDX-License-Identifier: BSD-2-Clause
"""ferry application services from Python: a ctypes binding of libferry_app.

An application attaches to a flow's `app` slot through ferryd's control
socket, receives packets' payloads in a shared area (no copy: each packet's
`data` is a writable memoryview over its frame), rewrites them in place,
and returns each with a verdict (PASS or DROP).  See ferry_app(3).

    import ferry_app
    with ferry_app.App("transcode") as app:
        while True:
            pkts = app.recv(timeout_ms=1000)
            for p in pkts:
                p.data[:] = bytes(p.data).upper()
            app.done(pkts)

The library is looked up in $FERRY_APP_LIB, then ../build/libferry_app.so
next to this file (a source tree), then the installed libferry_app.so.1.
"""
import ctypes
import errno
import os

PASS = 1
DROP = 2
CONTROL_SOCKET = "/run/ferry/ferryd.sock"


class _Pkt(ctypes.Structure):
    # struct ferry_app_pkt (ferry_app_client.h)
    _fields_ = [
        ("data", ctypes.POINTER(ctypes.c_uint8)),
        ("len", ctypes.c_uint32),
        ("cap", ctypes.c_uint32),
        ("queue", ctypes.c_uint32),
        ("frame", ctypes.c_uint32),
        ("cookie", ctypes.c_uint32),
    ]


def _load(path=None):
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [path, os.environ.get("FERRY_APP_LIB"),
                  os.path.join(here, "..", "build", "libferry_app.so"),
                  "libferry_app.so.1"]
    last = None
    for c in candidates:
        if not c or (os.sep in c and not os.path.exists(c)):
            continue
        try:
            lib = ctypes.CDLL(c, use_errno=True)
            break
        except OSError as e:
            last = e
    else:
        raise OSError(errno.ENOENT, "libferry_app not found (set FERRY_APP_LIB): %s" % last)
    lib.ferry_app_attach.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.c_char_p, ctypes.c_size_t]
    lib.ferry_app_attach.restype = ctypes.c_int
    lib.ferry_app_attach_fd.argtypes = [ctypes.c_int, ctypes.c_char_p,
                                        ctypes.POINTER(ctypes.c_void_p),
                                        ctypes.c_char_p, ctypes.c_size_t]
    lib.ferry_app_attach_fd.restype = ctypes.c_int
    lib.ferry_app_recv.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Pkt), ctypes.c_uint,
                                   ctypes.c_int]
    lib.ferry_app_recv.restype = ctypes.c_int
    lib.ferry_app_done.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Pkt), ctypes.c_uint,
                                   ctypes.POINTER(ctypes.c_uint8)]
    lib.ferry_app_done.restype = ctypes.c_int
    lib.ferry_app_emit.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Pkt), ctypes.c_char_p,
                                   ctypes.c_uint32]
    lib.ferry_app_emit.restype = ctypes.c_int
    lib.ferry_app_fd.argtypes = [ctypes.c_void_p]
    lib.ferry_app_fd.restype = ctypes.c_int
    lib.ferry_app_nr_queues.argtypes = [ctypes.c_void_p]
    lib.ferry_app_nr_queues.restype = ctypes.c_uint
    lib.ferry_app_detach.argtypes = [ctypes.c_void_p]
    lib.ferry_app_detach.restype = None
    return lib


class Packet:
    """One received packet: `data` is its payload, in place in the shared area.

    Assign to `data` (bytes-like, at most `cap` bytes) to change the
    payload and its length, or write into it in place.  The memoryview is
    valid until the packet is returned with App.done().
    """
    __slots__ = ("_pkt", "_view", "verdict")

    def __init__(self, pkt):
        self._pkt = pkt
        frame = (ctypes.c_uint8 * pkt.cap).from_address(ctypes.addressof(pkt.data.contents))
        self._view = memoryview(frame).cast("B")
        self.verdict = PASS

    @property
    def cap(self):
        return self._pkt.cap

    @property
    def data(self):
        return self._view[:self._pkt.len]

    @data.setter
    def data(self, value):
        value = memoryview(value).cast("B")
        if len(value) > self._pkt.cap:
            raise ValueError("payload of %d bytes over the packet's cap %d"
                             % (len(value), self._pkt.cap))
        self._view[:len(value)] = value
        self._pkt.len = len(value)

    def _release(self):
        self._view.release()


class App:
    """An attached application (libferry_app's handle)."""

    def __init__(self, slot, control_socket=None, batch=64, lib=None, fd=None):
        self._lib = lib if isinstance(lib, ctypes.CDLL) else _load(lib)
        self._batch = batch
        self._pkts = (_Pkt * batch)()
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(256)
        if fd is not None:
            ret = self._lib.ferry_app_attach_fd(fd, slot.encode(), ctypes.byref(handle),
                                                err, len(err))
        else:
            ret = self._lib.ferry_app_attach(control_socket.encode() if control_socket else None,
                                             slot.encode(), ctypes.byref(handle), err, len(err))
        if ret < 0:
            raise OSError(-ret, err.value.decode(errors="replace") or os.strerror(-ret))
        self._h = handle

    def fileno(self):
        """The wake-up pipe's read end: readable when recv has packets (for selectors)."""
        return self._lib.ferry_app_fd(self._h)

    @property
    def nr_queues(self):
        return self._lib.ferry_app_nr_queues(self._h)

    def recv(self, timeout_ms=-1, max_pkts=None):
        """Up to max_pkts packets (a list, empty on timeout or a signal).

        Raises ConnectionError (ENOTCONN) when ferryd detached the slot.
        """
        if not self._h:
            raise ValueError("detached")
        n = self._lib.ferry_app_recv(self._h, self._pkts, min(max_pkts or self._batch,
                                                              self._batch), timeout_ms)
        if n == -errno.EINTR:
            return []  # Python runs the signal handler now
        if n < 0:
            raise OSError(-n, os.strerror(-n))
        # Copies of the descriptors: the batch array is reused by the next recv.
        return [Packet(_Pkt.from_buffer_copy(self._pkts[i])) for i in range(n)]

    def done(self, packets, verdicts=None):
        """Returns packets to ferryd, each with its verdict (or packet.verdict)."""
        n = len(packets)
        if not n:
            return
        arr = (_Pkt * n)(*[p._pkt for p in packets])
        v = (ctypes.c_uint8 * n)(*(verdicts if verdicts is not None
                                   else [p.verdict for p in packets]))
        ret = self._lib.ferry_app_done(self._h, arr, n, v)
        if ret < 0:
            raise OSError(-ret, os.strerror(-ret))
        for p in packets:
            p._release()

    def emit(self, ref, data):
        """Emits data as a new packet of ref's session (ref: a Packet not yet done).

        It goes on ahead of ref; see ferry_app_emit(3).  Raises OSError
        (EOPNOTSUPP: ferryd takes no emits, ENOBUFS: return packets first).
        """
        data = bytes(data)
        ret = self._lib.ferry_app_emit(self._h, ctypes.byref(ref._pkt), data, len(data))
        if ret < 0:
            raise OSError(-ret, os.strerror(-ret))

    def detach(self):
        if self._h:
            self._lib.ferry_app_detach(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()

    def __del__(self):
        try:
            self.detach()
        except Exception:
            pass
