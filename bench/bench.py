#!/usr/bin/env python3
"""make bench: ours vs ntfsclone vs partclone.ntfs vs the dd ceiling, side by side in one run.

Cases (each run alternates the tools, ROUNDS rounds, medians reported):
  hot  : volume and outputs on tmpfs (/dev/shm), page cache warm
  cold : volume on the project disk (target/bench), caches dropped before every run
  big  : 64 GiB near-empty volume, save only
Prints a table with medians, ratios (tool time / ours) and peak RSS, and writes it to
target/bench/results.md. Benchmark volumes are cached in target/bench/.
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "target", "bench")
OURS = os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", "ntfsclone")
REF = "/usr/sbin/ntfsclone"
PC = "/usr/sbin/partclone.ntfs"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
MiB = 1 << 20


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, **kw)


def make_volume(path, size, fill):
    """mkntfs a sparse file and fill it through ntfs-3g with incompressible data."""
    if os.path.exists(path):
        return
    tmp = path + ".tmp"
    sh(["truncate", "-s", str(size), tmp])
    sh(["mkntfs", "-F", "-Q", "-q", "-L", "bench", tmp])
    if fill:
        mnt = tempfile.mkdtemp(prefix="ntfsclone-bench-mnt-")
        sh(["ntfs-3g", tmp, mnt])
        try:
            rnd = open("/dev/urandom", "rb")
            def put(name, n):
                with open(os.path.join(mnt, name), "wb") as f:
                    while n > 0:
                        k = min(n, 4 * MiB)
                        f.write(rnd.read(k))
                        n -= k
            for i in range(60):
                put("big%02d" % i, 10 * MiB)
            for i in range(200):
                put("mid%03d" % i, MiB)
            os.mkdir(os.path.join(mnt, "small"))
            for i in range(2000):
                put("small/s%04d" % i, 3000)
            for i in range(0, 200, 4):
                os.unlink(os.path.join(mnt, "mid%03d" % i))
            for i in range(3):
                put("late%d" % i, 10 * MiB)
        finally:
            sh(["umount", mnt])
            os.rmdir(mnt)
    os.rename(tmp, path)


def drop_caches():
    sh("sync")
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(cmd, cold):
    """Runs cmd (list); returns (seconds, peak RSS in KiB)."""
    if cold:
        drop_caches()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("benchmark command failed: %s" % " ".join(cmd))
    return dt, ru.ru_maxrss


def rm(*paths):
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)


def bench_set(label, vol, work, cold, ops=("save", "restore", "clone")):
    """Returns rows: (label, op, tool, median s, peak RSS KiB)."""
    ref_img = os.path.join(work, "ref.img")
    pc_img = os.path.join(work, "pc.img")
    sh([REF, "-q", "-s", "-O", ref_img, vol], stdout=subprocess.DEVNULL)
    if "restore" in ops:
        sh([PC, "-c", "-q", "-s", vol, "-O", pc_img], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = os.path.join(work, "out")
    size = os.path.getsize(vol)

    def restore_target():
        rm(out)
        sh(["truncate", "-s", str(size), out])

    tools = {
        "save": [
            ("ours", lambda: [OURS, "-q", "-s", "-O", out, vol], lambda: rm(out)),
            ("ntfsclone", lambda: [REF, "-q", "-s", "-O", out, vol], lambda: rm(out)),
            ("partclone", lambda: [PC, "-c", "-q", "-s", vol, "-O", out], lambda: rm(out)),
            ("dd", lambda: ["dd", "if=" + ref_img, "of=" + out, "bs=4M", "status=none"], lambda: rm(out)),
        ],
        "restore": [
            ("ours", lambda: [OURS, "-q", "-r", "-O", out, ref_img], restore_target),
            ("ntfsclone", lambda: [REF, "-q", "-r", "-O", out, ref_img], restore_target),
            ("partclone", lambda: [PC, "-r", "-q", "-s", pc_img, "-O", out], restore_target),
            ("dd", lambda: ["dd", "if=" + ref_img, "of=" + out, "bs=4M", "status=none"], lambda: rm(out)),
        ],
        "clone": [
            ("ours", lambda: [OURS, "-q", "-O", out, vol], lambda: rm(out)),
            ("ntfsclone", lambda: [REF, "-q", "-O", out, vol], lambda: rm(out)),
            ("partclone", lambda: [PC, "-b", "-q", "-s", vol, "-O", out], restore_target),
            ("dd", lambda: ["dd", "if=" + ref_img, "of=" + out, "bs=4M", "status=none"], lambda: rm(out)),
        ],
    }
    rows = []
    for op in ops:
        times = {name: [] for name, _, _ in tools[op]}
        rss = {name: 0 for name, _, _ in tools[op]}
        for _ in range(ROUNDS):
            for name, cmd, prep in tools[op]:
                prep()
                dt, r = timed(cmd(), cold)
                times[name].append(dt)
                rss[name] = max(rss[name], r)
        rm(out)
        for name, _, _ in tools[op]:
            rows.append((label, op, name, statistics.median(times[name]), rss[name]))
    rm(ref_img, pc_img)
    return rows


def main():
    for tool in (OURS, REF, PC):
        if not os.path.exists(tool):
            raise SystemExit("missing %s (make bench builds ours; make deps installs the others)" % tool)
    os.makedirs(CACHE, exist_ok=True)
    vol_disk = os.path.join(CACHE, "vol2g.img")
    big = os.path.join(CACHE, "vol64g.img")
    make_volume(vol_disk, 2 << 30, True)
    make_volume(big, 64 << 30, False)
    used = int(subprocess.run([REF, "-s", "-o", "-", vol_disk], capture_output=True).stdout[38:46][::-1].hex(), 16) * 4096
    rows = []
    shm = tempfile.mkdtemp(prefix="ntfsclone-bench-", dir="/dev/shm")
    try:
        vol_shm = os.path.join(shm, "vol.img")
        shutil.copyfile(vol_disk, vol_shm)
        rows += bench_set("hot (tmpfs)", vol_shm, shm, False)
        rm(vol_shm)
        rows += bench_set("cold (disk)", vol_disk, shm, True)
        rows += bench_set("64 GiB empty", big, shm, False, ops=("save", "clone"))
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    lines = ["Machine: %d cores, %s; volume 2 GiB with %.2f GB used (4 KiB clusters), %d rounds, medians."
             % (os.cpu_count(), open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": "),
                used / 1e9, ROUNDS), "",
             "| case | op | tool | median s | vs ours | peak RSS MiB |", "|---|---|---|---|---|---|"]
    ours_t = {(c, o): t for c, o, n, t, _ in rows if n == "ours"}
    for c, o, n, t, r in rows:
        lines.append("| %s | %s | %s | %.3f | %.2fx | %.1f |" % (c, o, n, t, t / ours_t[(c, o)], r / 1024))
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(CACHE, "results.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
