"""pyroughtime, the Python Roughtime client, queries a server once, unchanged.

Usage: pyroughtime_client.py HOST PORT PUBLIC_KEY_BASE64
pyroughtime verifies the reply (delegation, signature, Merkle path, MINT <= MIDP <= MAXT) and
raises on any failure; this prints the verified time as JSON on one line.
"""

import datetime
import json
import sys

from pyroughtime.pyroughtime import RoughtimeClient

host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
reply = RoughtimeClient().query(host, port, key, timeout=5)
since_epoch = reply["datetime"] - datetime.datetime(1970, 1, 1)
micros = (since_epoch.days * 86400 + since_epoch.seconds) * 10**6 + since_epoch.microseconds
print(json.dumps({
    "midpoint_us": micros,
    "radius_us": reply["radi"],
    "version": reply.get("ver"),
    "path_len": reply["pathlen"],
}))
