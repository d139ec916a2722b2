#!/usr/bin/python3
"""Connects multifd channels to a destination as fast as it can.

  mfd-flood.py PATH SECONDS READY

Until SECONDS pass or the unix socket PATH refuses connections (the
destination stopped listening), opens connections that each send a valid
multifd channel header (channel 0 of 2) and hang up.  Creates the file
READY once the first one went; prints how many it made.
"""
import socket
import struct
import sys
import time

MAGIC = b"HOPMFD01"


def main(argv):
    path, secs, ready = argv[1], float(argv[2]), argv[3]
    hdr = MAGIC + struct.pack(">II", 0, 2)
    deadline = time.time() + secs
    made = 0
    while time.time() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            s.sendall(hdr)
        except FileNotFoundError:
            time.sleep(0.01)        # not listening yet
            continue
        except OSError:
            if made:
                break               # listening no more
            time.sleep(0.01)
            continue
        finally:
            s.close()
        made += 1
        if made == 1:
            open(ready, "w").close()
    print(made)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
