"""Test submissions: each behaviour is one way a participant's container can behave or misbehave.

The harness passes nothing but the contract's environment, so every figure a behaviour needs is
fixed here; the tests set the limits around it.
"""

import csv
import errno
import hashlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

PHASE = sys.argv[1] if len(sys.argv) > 1 else "?"
BEHAVIOUR = os.environ.get("HARNESS_TEST_BEHAVIOUR", "constant")
MIB = 1024 * 1024
HOLD_BYTES = 128 * MIB  # "hold" keeps this much memory, then succeeds
FLOOD_BYTES = 500 * MIB  # "flood" writes this much to stdout
DEEP_LEVELS, DEEP_NAME, DEEP_FILE = 40, 200, 32 * MIB  # "deepdir": a path far past PATH_MAX, then a file
# Written in two halves so that this file never contains the marker the secret scan looks for.
SECRET_MARKER = ("HARNESS-ORGANIZER-" + "SECRET").encode()
LABELS_HEADER = b"id,label,split"


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


def forever(step):
    while True:
        step()


def hidden_labels_path():
    """Where the hidden labels lie on the host, guessed from the data mount's source in mountinfo."""
    data = next(line.split()[3] for line in open("/proc/self/mountinfo") if line.split()[4].startswith("/data/"))
    return os.path.join(os.path.dirname(os.path.dirname(data)), "hidden", "labels.csv")


# -- train-phase behaviours ------------------------------------------------------------------------


def sleeper():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    forever(lambda: time.sleep(1))


def detach():
    """Ignore SIGTERM and leave a grandchild in its own session, beating a heart into /model."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open("/model/heartbeat", "ab", buffering=0) as fh:
                forever(lambda: (fh.write(b"."), time.sleep(0.05)))
        os._exit(0)
    forever(lambda: time.sleep(1))


def balloon():
    chunks = []
    forever(lambda: chunks.append(bytearray(64 * MIB)))  # bytearray zero-fills: the pages are touched


def hold():
    kept = bytearray(HOLD_BYTES)
    time.sleep(0.2)
    del kept


def crash():
    print("loading data...")
    raise RuntimeError("model exploded at epoch 3")


def ansicrash():
    """Output that would drive a terminal: clear the screen, retitle the window, a fake prompt."""
    sys.stderr.write("\x1b[2J\x1b]0;owned\x07\x1b[31mharness: all clear\x1b[0m\r\n")
    sys.stderr.flush()
    sys.exit(3)


def flood():
    line = b"x" * 1023 + b"\n"
    out = sys.stdout.buffer
    for _ in range(FLOOD_BYTES // len(line)):
        out.write(line)
    out.flush()


def diskfill():
    """One file, as fast as possible: the kernel's file-size limit stops it."""
    with open("/model/fill.bin", "wb") as fh:
        forever(lambda: fh.write(b"\0" * MIB))


def diskfill_many():
    """Many files, each under the file-size limit: only the harness's watch can stop it."""
    block, count = b"\1" * MIB, iter(range(1 << 30))

    def one_file():
        with open(f"/model/fill-{next(count)}.bin", "wb") as fh:
            for _ in range(8):
                fh.write(block)

    forever(one_file)


def manyfiles():
    count = iter(range(1 << 30))
    forever(lambda: open(f"/model/empty-{next(count)}", "w").close())


def deepdir():
    os.chdir("/model")
    for level in range(DEEP_LEVELS):
        name = str(level).rjust(DEEP_NAME, "d")
        os.mkdir(name)
        os.chdir(name)
    with open("deep.bin", "wb") as fh:
        fh.write(b"\1" * DEEP_FILE)
    os.chdir("/")


def forkbomb():
    def fork():
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)

    forever(fork)


def cpuburn():
    """Four threads hashing for 3 s: hashlib releases the GIL, so they would use four cores."""
    stop, data = time.time() + 3, b"\0" * MIB

    def burn():
        while time.time() < stop:
            hashlib.sha256(data).digest()

    threads = [threading.Thread(target=burn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def modeltrap():
    """Links and special files in /model that the harness must never follow or open."""
    os.symlink(hidden_labels_path(), "/model/labels.csv")
    os.symlink("/", "/model/root")
    os.symlink("loop", "/model/loop")
    os.mkfifo("/model/pipe")
    with open("/model/big.bin", "wb") as fh:
        fh.write(b"\1" * MIB)
    for i in range(3):
        os.link("/model/big.bin", f"/model/big-{i}.bin")


def hardlinks():
    """One 8 MiB file and 99 hard links to it: 8 MiB on disk, 800 MiB to read name by name."""
    with open("/model/weights.bin", "wb") as fh:
        fh.write(b"\1" * 8 * MIB)
    for i in range(99):
        os.link("/model/weights.bin", f"/model/weights-{i}.bin")
    time.sleep(5)  # long enough for the watch to see it mid-phase, too


def sparse():
    """Ten 60 MiB files with no data in them, each under the file-size limit: no blocks on disk, 600 MiB to read."""
    for i in range(10):
        with open(f"/model/holes-{i}.bin", "wb") as fh:
            fh.truncate(60 * MIB)


# -- the probe: what a container can see and do -----------------------------------------------------


def status_fields():
    fields = dict(line.rstrip("\n").split(":\t", 1) for line in open("/proc/self/status") if ":\t" in line)
    return {k: fields[k].strip() for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")}


def can_write(directory):
    path = os.path.join(directory, "harness-probe")
    try:
        open(path, "w").close()
    except OSError as exc:
        return errno.errorcode[exc.errno]
    os.unlink(path)
    return "writable"


def network():
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=2).close()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc))
    return "connected"


def fill_tmp():
    """Write /tmp until the kernel refuses; hold it full a moment (for the harness's sampling)."""
    written, error = 0, None
    with open("/tmp/fill", "wb", buffering=0) as fh:
        while written < 1024 * MIB:
            try:
                written += fh.write(b"\1" * MIB)
            except OSError as exc:
                error = errno.errorcode[exc.errno]
                break
        time.sleep(0.5)
    os.unlink("/tmp/fill")
    return {"bytes": written, "error": error}


def scan_files():
    """Every readable file that holds the organizer's secret or looks like the hidden labels.

    /usr is the image's own, built before any run and mounted read-only: it is not scanned.
    """
    secrets, labels = [], []
    for path in ("/proc/self/environ", "/proc/self/cmdline", "/proc/1/environ", "/proc/1/cmdline"):
        if SECRET_MARKER in open(path, "rb").read():
            secrets.append(path)
    for top, dirs, files in os.walk("/"):
        if top == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr")]
        for name in files:
            path = os.path.join(top, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            if SECRET_MARKER in data:
                secrets.append(path)
            if data.startswith(LABELS_HEADER) or name == "labels.csv":
                labels.append(path)
    return secrets, labels


def oom_score_adj():
    """The kernel's OOM preference of every process in the container (its init, any other, a child it starts)."""
    child = "print(open('/proc/self/oom_score_adj').read().strip())"
    seen = {pid: open(f"/proc/{pid}/oom_score_adj").read().strip() for pid in os.listdir("/proc") if pid.isdigit()}
    seen["child"] = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout.strip()
    return seen


def probe(report_path):
    secrets, labels = scan_files()
    report = {
        "env": dict(os.environ),
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
        "status": status_fields(),
        "oom_score_adj": oom_score_adj(),
        "setuid_id": subprocess.run(["/usr/local/bin/suid-id"], capture_output=True, text=True).stdout.strip(),
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "connect": network(),
        "mountinfo": [line.split() for line in open("/proc/self/mountinfo")],
        "write": {d: can_write(d) for d in ("/", "/etc", "/usr", "/var/tmp", "/data/train", "/data/test", "/model", "/output", "/tmp")},
        "tmp": fill_tmp(),
        "secrets": secrets,
        "labels": labels,
    }
    with open(report_path, "w") as fh:
        json.dump(report, fh)


TRAIN = {f.__name__: f for f in (sleeper, detach, balloon, hold, crash, flood, diskfill, diskfill_many, manyfiles, deepdir, forkbomb, cpuburn, modeltrap, hardlinks, sparse, ansicrash)}


# -- (b) live logs (issue 15): train phases whose logs grow while they run --------------------------
TICKS, TICK_S = 15, 0.5  # "ticker": a numbered line every 0.5 s (long enough to be seen growing at any load), every fifth to stderr too
GUSHES, GUSH_LINES, GUSH_S = 15, 100, 0.2  # "gush": 100 numbered lines every 0.2 s, far past a small log limit


def ticker():
    for n in range(TICKS):
        print(f"tick {n:03d}", flush=True)
        if n % 5 == 0:
            print(f"note {n:03d}", file=sys.stderr, flush=True)
        time.sleep(TICK_S)


def gush():
    for burst in range(GUSHES):
        sys.stdout.write("".join(f"line {burst * GUSH_LINES + n:05d} {'.' * 40}\n" for n in range(GUSH_LINES)))
        sys.stdout.flush()
        time.sleep(GUSH_S)


TRAIN.update(ticker=ticker, gush=gush)


def kernel():
    """Say which kernel answers the container's system calls: the host's under runc, gVisor's own
    (a release it makes up) under runsc."""
    print(f"kernel {os.uname().release}", flush=True)


TRAIN["kernel"] = kernel


# -- the smoke stage (issue 15, part a) ------------------------------------------------------------
def slowcrash():
    """Train takes 0.1 s per training row (minutes on the full digits data, seconds on a smoke
    stage's few rows); its infer crashes at once (below)."""
    with open("/data/train/train.csv", newline="") as fh:
        rows = sum(1 for _ in csv.DictReader(fh))
    print(f"training on {rows} rows", flush=True)
    time.sleep(0.1 * rows)


TRAIN["slowcrash"] = slowcrash
if BEHAVIOUR == "slowcrash" and PHASE == "infer":
    raise RuntimeError("slowcrash: inference is broken")


def infer(ids):
    if BEHAVIOUR == "malformed":
        write_predictions(ids, header=("identifier", "digit"))
    elif BEHAVIOUR == "short":
        write_predictions(ids[2:])
    elif BEHAVIOUR == "symlink":
        os.symlink(hidden_labels_path(), "/output/predictions.csv")
    elif BEHAVIOUR == "fifo":
        os.mkfifo("/output/predictions.csv")
    elif BEHAVIOUR == "device":
        try:
            os.mknod("/output/predictions.csv", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
        except OSError as exc:
            print(f"mknod: {errno.errorcode[exc.errno]}")
    elif BEHAVIOUR == "directory":
        os.mkdir("/output/predictions.csv")
    elif BEHAVIOUR == "random":  # non-deterministic on purpose: a different guess per id on every run
        with open("/output/predictions.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("id", "label"))
            writer.writerows((i, str(os.urandom(1)[0] % 10)) for i in ids)
    elif BEHAVIOUR == "seeded":  # a guess per id drawn from HARNESS_SEED: the same seed, the same predictions
        seed = os.environ.get("HARNESS_SEED", "")
        with open("/output/predictions.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("id", "label"))
            writer.writerows((i, str(hashlib.sha256(f"{seed}:{i}".encode()).digest()[0] % 10)) for i in ids)
    elif BEHAVIOUR == "oversized":
        with open("/output/predictions.csv", "wb") as fh:
            fh.truncate(200 * MIB)  # sparse: 200 MiB long, almost nothing on disk
    elif BEHAVIOUR != "nothing":
        write_predictions(ids)


def paced():
    """"nap<S>" sleeps S seconds (default 1) in each phase, "spin<S>" keeps one CPU busy that long;
    then either behaves as "constant". For benchmarks and for tests that need a phase to be running."""
    match = re.fullmatch(r"(nap|spin)(\d+(?:\.\d+)?)?", BEHAVIOUR)
    if not match:
        return
    seconds = float(match.group(2) or 1)
    if match.group(1) == "nap":
        time.sleep(seconds)
        return
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        pass


# -- (d) messages that name the fix: each behaviour makes one mistake the contract explains -----------


def readonly():
    """Save the model beside the code, as on one's own machine."""
    with open("/app/model.pkl", "wb") as fh:
        fh.write(b"weights")


def tmpmodel_train():
    with open("/tmp/model.pkl", "wb") as fh:  # /tmp is emptied when train ends
        fh.write(b"weights")


def tmpmodel_infer(ids):
    with open("/tmp/model.pkl", "rb") as fh:
        fh.read()
    write_predictions(ids)


def wrongname_infer(ids):
    write_predictions(ids)
    os.rename("/output/predictions.csv", "/output/preds.csv")


def pipinstall():
    sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", "--break-system-packages", "--retries", "0", "numpy"]).returncode)


def download_infer(ids):
    import urllib.request

    urllib.request.urlopen("https://huggingface.co/some/model/resolve/main/weights.bin", timeout=5)


TRAIN.update(readonly=readonly, tmpmodel=tmpmodel_train, pipinstall=pipinstall)
INFER = {"tmpmodel": tmpmodel_infer, "wrongname": wrongname_infer, "download": download_infer}


# -- any competition's predictions (issue 25): the tables a competition builder writes -------------------
def majority_train():
    """The most common target of /data/train/train.csv (its last column, as the tables and files
    builders write it): a valid prediction whether the target is a class or a number."""
    with open("/data/train/train.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header, values = rows[0], [row[-1] for row in rows[1:]]
    best = max(sorted(set(values)), key=values.count)
    with open("/model/majority.json", "w") as fh:
        json.dump({"columns": [header[0], header[-1]], "value": best}, fh)


def majority_infer(ids):
    with open("/model/majority.json") as fh:
        model = json.load(fh)
    with open("/output/predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(model["columns"])
        writer.writerows((i, model["value"]) for i in ids)


TRAIN["majority"] = majority_train
INFER["majority"] = majority_infer


def main():
    if BEHAVIOUR == "probe":
        probe(f"/{'model' if PHASE == 'train' else 'output'}/probe-{PHASE}.json")
    paced()
    if PHASE == "train":
        TRAIN.get(BEHAVIOUR, lambda: None)()
        train_ok()
    else:
        INFER.get(BEHAVIOUR, infer)(test_ids())


if __name__ == "__main__":
    main()
