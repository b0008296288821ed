#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""app_upper: an application service in Python: uppercases ASCII payloads.

    app_upper.py [-s CONTROL_SOCKET] SLOT

Stops on SIGINT/SIGTERM; exits 3 when ferryd detaches the slot.
"""
import argparse
import errno
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import ferry_app  # noqa: E402

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-s", dest="sock", default=None, help="ferryd's control socket")
    ap.add_argument("slot")
    args = ap.parse_args()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        app = ferry_app.App(args.slot, control_socket=args.sock)
    except OSError as e:
        print("app_upper: %s" % e.strerror, file=sys.stderr)
        return 2
    print("app_upper: attached to '%s', %d queues" % (args.slot, app.nr_queues), file=sys.stderr)
    with app:
        while not stop:
            try:
                pkts = app.recv(timeout_ms=1000)
            except OSError as e:
                print("app_upper: %s" % os.strerror(e.errno), file=sys.stderr)
                return 3 if e.errno == errno.ENOTCONN else 1
            for p in pkts:
                # bytes.upper() changes ASCII a-z only: other bytes pass as they are.
                p.data = bytes(p.data).upper()
            app.done(pkts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
