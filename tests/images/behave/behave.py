"""Test submissions: each behaviour is one way a participant's container can behave or misbehave."""

import csv
import json
import os
import signal
import sys
import threading
import time

PHASE = sys.argv[1] if len(sys.argv) > 1 else "?"
BEHAVIOUR = os.environ.get("HARNESS_TEST_BEHAVIOUR", "constant")


def test_ids():
    with open("/data/test/test.csv", newline="") as fh:
        return [row["id"] for row in csv.DictReader(fh)]


def write_predictions(ids, header=("id", "label")):
    with open("/output/predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows((i, "0") for i in ids)


def train_ok():
    with open("/model/model.json", "w") as fh:
        json.dump({"label": "0"}, fh)


def probe():
    """Report what a container can see and do, for the isolation tests."""
    report = {
        "env": dict(os.environ),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cap_eff": next(l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")),
        "no_new_privs": next(l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "mounts": open("/proc/self/mounts").read(),
    }
    for path in ("/", "/data/train", "/etc"):
        try:
            open(os.path.join(path, "harness-probe"), "w").close()
            report[f"writable:{path}"] = True
        except OSError:
            report[f"writable:{path}"] = False
    with open("/model/probe.json", "w") as fh:
        json.dump(report, fh)


def main():
    if PHASE == "train":
        if BEHAVIOUR == "sleeper":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(1)
        if BEHAVIOUR == "balloon":
            chunks = []
            while True:
                chunks.append(bytearray(64 * 1024 * 1024))  # pages are touched: bytearray zero-fills
        if BEHAVIOUR == "crash":
            print("loading data...")
            raise RuntimeError("model exploded at epoch 3")
        if BEHAVIOUR == "flood":
            line = b"x" * 1023 + b"\n"
            total = int(os.environ.get("FLOOD_BYTES", 500 * 1024 * 1024))
            out = sys.stdout.buffer
            for _ in range(total // 1024):
                out.write(line)
            out.flush()
        if BEHAVIOUR == "diskfill":
            with open("/model/fill.bin", "wb") as fh:
                while True:
                    fh.write(b"\0" * (1 << 20))
        if BEHAVIOUR == "forkbomb":
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
        if BEHAVIOUR == "cpuburn":
            stop = time.time() + 3
            def burn():
                while time.time() < stop:
                    pass
            threads = [threading.Thread(target=burn) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if BEHAVIOUR == "probe":
            probe()
        train_ok()
        return
    ids = test_ids()
    if BEHAVIOUR == "malformed":
        write_predictions(ids, header=("identifier", "digit"))
    elif BEHAVIOUR == "short":
        write_predictions(ids[2:])
    elif BEHAVIOUR == "symlink":
        os.symlink("/data/test/test.csv", "/output/predictions.csv")
    elif BEHAVIOUR == "fifo":
        os.mkfifo("/output/predictions.csv")
    elif BEHAVIOUR == "nothing":
        pass
    else:
        write_predictions(ids)


if __name__ == "__main__":
    main()
