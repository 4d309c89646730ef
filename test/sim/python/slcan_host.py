#!/usr/bin/env python3
"""A real slcan host no one here wrote: python-can's `slcan` interface.

Opens CHANNEL as python-can users do (can.Bus(interface="slcan", bitrate=...):
it writes C, S<n>, O and waits for no answer), receives frames until COUNT
counter frames (id 0x200, uint32 LE in bytes 0-3) arrived, then sends the
OBD-II request "engine speed" (0x7DF 02 01 0C) and waits for the answer on
0x7E8. Prints one JSON object on stdout:

  {"counters": [...], "obd": {"id": 2024, "data": "04410c..."} | null, ...}

Exit status 0 when it ran to the end (the test judges the content), 1 on a
python-can error (printed on stderr).
"""
import argparse
import json
import sys
import time

import can


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channel", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--bitrate", type=int, default=500000)
    ap.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args()

    # sleep_after_open: python-can waits 2 s by default for boards that reset on open; a pty does not.
    bus = can.Bus(interface="slcan", channel=args.channel, bitrate=args.bitrate, sleep_after_open=0.05)
    out = {"counters": [], "corrupt": 0, "other_ids": {}, "obd": None, "obd_sent": False}
    try:
        deadline = time.monotonic() + args.timeout
        while len(out["counters"]) < args.count and time.monotonic() < deadline:
            msg = bus.recv(timeout=0.5)
            if msg is None:
                continue
            if msg.arbitration_id == 0x200 and not msg.is_extended_id and msg.dlc == 8:
                n = int.from_bytes(msg.data[0:4], "little")
                if n ^ int.from_bytes(msg.data[4:8], "little") != 0xFFFFFFFF:
                    out["corrupt"] += 1
                out["counters"].append(n)
            else:
                key = ("x%08X" if msg.is_extended_id else "s%03X") % msg.arbitration_id
                out["other_ids"][key] = out["other_ids"].get(key, 0) + 1

        request = can.Message(arbitration_id=0x7DF, is_extended_id=False,
                              data=[0x02, 0x01, 0x0C, 0x55, 0x55, 0x55, 0x55, 0x55])
        bus.send(request)
        out["obd_sent"] = True
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            msg = bus.recv(timeout=0.5)
            if msg is not None and msg.arbitration_id == 0x7E8 and not msg.is_extended_id:
                out["obd"] = {"id": msg.arbitration_id, "dlc": msg.dlc, "data": bytes(msg.data).hex()}
                break
    finally:
        bus.shutdown()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except can.CanError as err:
        print(f"python-can: {err}", file=sys.stderr)
        sys.exit(1)
