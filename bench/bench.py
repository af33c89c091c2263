#!/usr/bin/env python3
"""make bench: ours vs ntfsclone vs partclone.ntfs vs the dd ceiling, side by side in one run.

Cases (each run alternates the tools, ROUNDS rounds, medians reported):
  hot  : volume and outputs on tmpfs (/dev/shm), page cache warm; ceiling: dd bs=4M of the image
  cold : volume on the project disk (target/bench), caches dropped before every run; ceiling:
         reading the used bytes of the volume once with 4 MiB preads ("read ceiling")
  big  : 64 GiB near-empty volume, save and clone
  zstd : 2 GiB volume with ~0.9 GB of mixed data (binaries, text, random) on tmpfs: our
         compressed save (--zstd) vs `ntfsclone -s -o - | zstd -T0 -3`, our restore of the .zst
         image vs `zstd -dc | ntfsclone -r -O`, both beside our uncompressed save and restore;
         compression ratio and output sizes
  disk : a GPT disk on tmpfs (ESP with files, MSR, two 1 GiB NTFS partitions with data) behind
         loop devices, save and restore: `--save-image --disk` / `--restore-image --disk` against
         the partitions one by one (ours and ntfsclone) plus dd of the rest (table area, ESP,
         MSR, backup GPT); the target: within 10 % of ours one by one
Prints a table with medians of wall time and of CPU time (user+sys), ratios (tool / ours), peak
RSS, then the issue's targets with their verdicts, and writes it all to target/bench/results.md.
Benchmark volumes are cached in target/bench/ (`bench.py --volumes` only makes them).
Wall times are only meaningful on an otherwise idle machine: the load average is printed too.

Environment: ROUNDS (default 3), CARGO_TARGET_DIR, BENCH_CACHE, OURS (binary to measure),
ONLY (comma-separated case:op filters, e.g. ONLY=hot:clone,cold:save,disk; default: everything),
SETTLE (seconds to wait at most for an idle CPU before each case, default 120).
"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"))
CACHE = os.environ.get("BENCH_CACHE") or os.path.join(TARGET, "bench")
OURS = os.environ.get("OURS") or os.path.join(TARGET, "x86_64-unknown-linux-musl", "release", "ntfsclone")
REF = "/usr/sbin/ntfsclone"
PC = "/usr/sbin/partclone.ntfs"
TIME = "/usr/bin/time"
ZSTD = "/usr/bin/zstd"
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


def mixed_files():
    """Paths of installed files, sorted: ELF binaries and libraries, and text (headers, Python,
    docs), each list in a fixed order so that every machine of one kind fills alike."""
    def walk(roots, keep):
        out = []
        for root in roots:
            for d, _, names in os.walk(root):
                for n in names:
                    p = os.path.join(d, n)
                    if os.path.isfile(p) and not os.path.islink(p) and keep(p):
                        out.append(p)
        return sorted(out)

    def is_elf(p):
        try:
            with open(p, "rb") as f:
                return f.read(4) == b"\x7fELF"
        except OSError:
            return False
    bins = walk(["/usr/bin", "/usr/lib/x86_64-linux-gnu"], is_elf)
    text = walk(["/usr/include", "/usr/lib/python3", "/usr/share/perl5", "/usr/share/i18n"],
                lambda p: not p.endswith((".gz", ".pyc", ".xz", ".bz2", ".zst")))
    return bins, text


def make_mixed_volume(path, size=2 << 30):
    """mkntfs a sparse file and fill it through ntfs-3g with ~0.9 GB of mixed data: 300 MB of
    binaries, 300 MB of text (both cycled from installed files), 300 MB of random bytes."""
    if os.path.exists(path):
        return
    tmp = path + ".tmp"
    sh(["truncate", "-s", str(size), tmp])
    sh(["mkntfs", "-F", "-Q", "-q", "-L", "mixed", tmp])
    bins, text = mixed_files()
    mnt = tempfile.mkdtemp(prefix="ntfsclone-bench-mnt-")
    sh(["ntfs-3g", tmp, mnt])
    try:
        for kind, files in (("bin", bins), ("text", text)):
            os.mkdir(os.path.join(mnt, kind))
            total, i = 0, 0
            while total < 300 * 1000 * 1000 and files:
                src = files[i % len(files)]
                dst = os.path.join(mnt, kind, "%06d" % i)
                with open(src, "rb") as f, open(dst, "wb") as g:
                    data = f.read()
                    g.write(data)
                total += len(data)
                i += 1
        os.mkdir(os.path.join(mnt, "random"))
        with open("/dev/urandom", "rb") as rnd:
            for i in range(75):
                with open(os.path.join(mnt, "random", "r%02d" % i), "wb") as g:
                    g.write(rnd.read(4 * 1000 * 1000))
    finally:
        sh(["umount", mnt])
        os.rmdir(mnt)
    os.rename(tmp, path)


def cpu_idle(seconds=1.0):
    """Fraction of CPU time idle over `seconds` (from /proc/stat)."""
    def sample():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return v[3] + v[4], sum(v)
    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(1, t1 - t0)


def settle(limit=None):
    """Waits (at most `limit` s) until the machine is idle: a run started while something else
    still works (a test suite just finished, say) measures that work too. Returns the wait."""
    if limit is None:
        limit = float(os.environ.get("SETTLE", "120"))
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit and cpu_idle() < 0.9:
        pass
    return time.perf_counter() - t0


def drop_caches():
    sh("sync")
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(cmd, cold):
    """Runs cmd (list); returns (wall seconds, CPU seconds, peak RSS in KiB). A command whose
    stdout starts with "elapsed=" reports its own wall time (the read ceiling, so that the
    Python start-up is not counted against it).

    The peak RSS comes from /usr/bin/time, not from our own wait4: Linux counts the memory a
    process had before exec in its peak, and a child forked from this Python process starts
    with Python's. time(1) is small, so its child's peak is the command's own."""
    if cold:
        drop_caches()
    fd, rss_file = tempfile.mkstemp(prefix="ntfsclone-bench-rss-")
    os.close(fd)
    full = [TIME, "-f", "%M", "-o", rss_file] + cmd
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("benchmark command failed: %s" % " ".join(cmd))
        rss = int(open(rss_file).read().split()[-1])
    finally:
        os.unlink(rss_file)
    if out.startswith(b"elapsed="):
        dt = float(out.split(b"=")[1].split()[0])
    return dt, ru.ru_utime + ru.ru_stime, rss


def used_runs(image):
    """Byte runs [offset, length] of the volume that an ntfsclone image holds (its CMD_NEXT
    records, merged), read from the image's records."""
    runs = []
    with open(image, "rb") as f:
        hdr = f.read(56)
        cs = int.from_bytes(hdr[18:22], "little")
        dev = int.from_bytes(hdr[22:30], "little")
        nr = int.from_bytes(hdr[30:38], "little", signed=True)
        f.seek(int.from_bytes(hdr[46:50], "little"))
        pos = 0
        while pos <= nr:
            c = f.read(1)
            if not c:
                break
            if c == b"\0":
                pos += int.from_bytes(f.read(8), "little", signed=True)
                continue
            size = cs if (pos + 1) * cs < dev else dev - pos * cs
            f.seek(size, 1)
            if runs and runs[-1][0] + runs[-1][1] == pos * cs:
                runs[-1][1] += size
            else:
                runs.append([pos * cs, size])
            pos += 1
    return runs


def read_ceiling(vol, runs_file):
    """Child process: reads the runs of `vol` once with 4 MiB preads; prints elapsed=SECONDS."""
    runs = json.load(open(runs_file))
    buf = bytearray(4 * MiB)
    mv = memoryview(buf)
    fd = os.open(vol, os.O_RDONLY)
    t0 = time.perf_counter()
    for off, length in runs:
        while length > 0:
            k = min(length, 4 * MiB)
            n = os.preadv(fd, [mv[:k]], off)
            if n <= 0:
                raise SystemExit("short read at %d" % off)
            off += n
            length -= n
    print("elapsed=%.6f" % (time.perf_counter() - t0))


def rm(*paths):
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)


def wanted(label, op):
    """ONLY=hot:clone,cold,big,disk: a case (hot, cold, big or disk) with an optional op."""
    only = os.environ.get("ONLY")
    if not only:
        return True
    case = {"64": "big"}.get(label.split()[0], label.split()[0])
    for item in only.split(","):
        c, _, o = item.partition(":")
        if c == case and o in ("", op):
            return True
    return False


def run_rounds(label, op, tools, cold):
    """Runs each (name, cmd, prep) of `tools` ROUNDS times, rotating their order every round
    (on a cold cache the position in the round matters: the run after another one finds the
    disk and page cache in another state), and returns one row per tool: (label, op, name,
    median wall s, median CPU s, peak RSS). Every round is logged (target/bench/rounds.log) so
    that outliers can be seen."""
    times = {name: [] for name, _, _ in tools}
    cpu = {name: [] for name, _, _ in tools}
    rss = {name: 0 for name, _, _ in tools}
    for rnd in range(ROUNDS):
        k = rnd % len(tools)
        for name, cmd, prep in tools[k:] + tools[:k]:
            prep()
            dt, c, peak = timed(cmd(), cold)
            with open(os.path.join(CACHE, "rounds.log"), "a") as log:
                log.write("%s %s round %d %s: %.3f s wall, %.3f s CPU\n"
                          % (label, op, rnd, name, dt, c))
            times[name].append(dt)
            cpu[name].append(c)
            rss[name] = max(rss[name], peak)
    return [(label, op, name, statistics.median(times[name]), statistics.median(cpu[name]),
             rss[name]) for name, _, _ in tools]


def bench_set(label, vol, work, cold, ops=("save", "restore", "clone")):
    """Returns rows: (label, op, tool, median wall s, median CPU s, peak RSS KiB)."""
    ref_img = os.path.join(work, "ref.img")
    pc_img = os.path.join(work, "pc.img")
    runs_file = os.path.join(work, "runs.json")
    out = os.path.join(work, "out")
    ours_img = os.path.join(work, "ours.img")
    sh([REF, "-q", "-s", "-O", ref_img, vol], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Restores read our image (with its checksum trailer, which ours verifies and ntfsclone
    # ignores), so that the measurement includes the integrity check.
    sh([OURS, "-q", "-s", "-O", ours_img, vol], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(runs_file, "w") as f:
        json.dump(used_runs(ref_img), f)
    # The ceiling of each case: dd of the same bytes (hot), one read of the used bytes (cold).
    if cold:
        ceiling = ("read ceiling", lambda: [sys.executable, os.path.abspath(__file__),
                                            "--read-ceiling", vol, runs_file], lambda: None)
    else:
        ceiling = ("dd", lambda: ["dd", "if=" + ref_img, "of=" + out, "bs=4M", "status=none"],
                   lambda: rm(out))
    if "restore" in ops:
        sh([PC, "-c", "-q", "-s", vol, "-O", pc_img], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    size = os.path.getsize(vol)

    def restore_target():
        rm(out)
        sh(["truncate", "-s", str(size), out])

    tools = {
        "save": [
            ("ours", lambda: [OURS, "-q", "-s", "-O", out, vol], lambda: rm(out)),
            ("ntfsclone", lambda: [REF, "-q", "-s", "-O", out, vol], lambda: rm(out)),
            ("partclone", lambda: [PC, "-c", "-q", "-s", vol, "-O", out], lambda: rm(out)),
            ceiling,
        ],
        "restore": [
            ("ours", lambda: [OURS, "-q", "-r", "-O", out, ours_img], restore_target),
            ("ntfsclone", lambda: [REF, "-q", "-r", "-O", out, ours_img], restore_target),
            ("partclone", lambda: [PC, "-r", "-q", "-s", pc_img, "-O", out], restore_target),
            ceiling,
        ],
        "clone": [
            ("ours", lambda: [OURS, "-q", "-O", out, vol], lambda: rm(out)),
            ("ntfsclone", lambda: [REF, "-q", "-O", out, vol], lambda: rm(out)),
            ("partclone", lambda: [PC, "-b", "-q", "-s", vol, "-O", out], restore_target),
            ceiling,
        ],
    }
    rows = []
    for op in ops:
        if not wanted(label, op):
            continue
        rows += run_rounds(label, op, tools[op], cold)
        rm(out)
    rm(ref_img, ours_img, pc_img, runs_file)
    return rows


def bench_zstd(vol, work):
    """Compressed save and restore against the zstd pipelines, side by side; returns (rows,
    sizes) with sizes = {"image": uncompressed image bytes, "ours": our .zst, "pipe": the
    pipeline's .zst}."""
    label = "zstd (tmpfs)"
    out = os.path.join(work, "out")
    img = os.path.join(work, "plain.img")
    ours_zst = os.path.join(work, "ours.zst")
    pipe_zst = os.path.join(work, "pipe.zst")
    sh([OURS, "-q", "-s", "-O", img, vol], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sh([OURS, "-q", "-s", "--zstd", "-O", ours_zst, vol], stdout=subprocess.DEVNULL,
       stderr=subprocess.DEVNULL)
    sh("%s -s -o - %s 2>/dev/null | %s -q -T0 -3 > %s" % (REF, vol, ZSTD, pipe_zst))
    sizes = {"image": os.path.getsize(img), "ours": os.path.getsize(ours_zst),
             "pipe": os.path.getsize(pipe_zst)}
    size = os.path.getsize(vol)

    def restore_target():
        rm(out)
        sh(["truncate", "-s", str(size), out])

    tools = {
        "zstd save": [
            ("ours --zstd", lambda: [OURS, "-q", "-s", "--zstd", "-O", out, vol], lambda: rm(out)),
            ("ntfsclone | zstd -T0 -3",
             lambda: ["sh", "-c", "%s -s -o - %s 2>/dev/null | %s -q -T0 -3 > %s"
                      % (REF, vol, ZSTD, out)], lambda: rm(out)),
            ("ours uncompressed", lambda: [OURS, "-q", "-s", "-O", out, vol], lambda: rm(out)),
        ],
        "zstd restore": [
            ("ours --zstd", lambda: [OURS, "-q", "-r", "-O", out, ours_zst], restore_target),
            ("zstd -dc | ntfsclone",
             lambda: ["sh", "-c", "%s -q -dc %s | %s -q -r -O %s - >/dev/null 2>&1"
                      % (ZSTD, pipe_zst, REF, out)], restore_target),
            ("ours uncompressed", lambda: [OURS, "-q", "-r", "-O", out, img], restore_target),
        ],
    }
    rows = []
    for op, cmds in tools.items():
        if not wanted(label, op.split()[1]):
            continue
        rows += run_rounds(label, op, cmds, False)
        rm(out)
    rm(img, ours_zst, pipe_zst)
    return rows, sizes


def zstd_verdicts(rows, sizes):
    """The compression targets: save >= 1.2x faster than the pipeline with output <= 2 %
    larger, restore >= 1.5x faster; ratio and the uncompressed save and restore for scale."""
    t = {(o, n): (w, u, r) for c, o, n, w, u, r in rows if c == "zstd (tmpfs)"}
    out = []

    def check(text, ok):
        out.append("- %s: %s" % (text, "PASS" if ok else "FAIL"))
    if sizes:
        out.append("- compression: image %.1f MB -> ours %.1f MB (ratio %.3f), pipeline %.1f MB "
                   "(ratio %.3f)" % (sizes["image"] / 1e6, sizes["ours"] / 1e6,
                                     sizes["ours"] / sizes["image"], sizes["pipe"] / 1e6,
                                     sizes["pipe"] / sizes["image"]))
        grow = sizes["ours"] / sizes["pipe"] - 1
        check("zstd output vs pipeline: %+.2f %% (target <= +2 %%)" % (100 * grow), grow <= 0.02)
    for op, other, need in (("zstd save", "ntfsclone | zstd -T0 -3", 1.2),
                            ("zstd restore", "zstd -dc | ntfsclone", 1.5)):
        ours, ref = t.get((op, "ours --zstd")), t.get((op, other))
        plain = t.get((op, "ours uncompressed"))
        if ours and ref:
            check("%s: pipeline/ours = %.2f (target >= %.1f); ours/uncompressed = %.2f"
                  % (op, ref[0] / ours[0], need, ours[0] / plain[0] if plain else float("nan")),
                  ref[0] / ours[0] >= need)
        if ours:
            check("%s peak RSS: %.1f MiB (target <= 64 MiB)" % (op, ours[2] / 1024),
                  ours[2] <= 64 * 1024)
    return out
# The disk case's GPT disk, in 512-byte sectors: (name, start, sectors).
DISK_PARTS = [("esp", 2048, 204800), ("msr", 206848, 32768),
              ("p3", 239616, 2 << 20), ("p4", 239616 + (2 << 20), 2 << 20)]
DISK_SECTORS = DISK_PARTS[-1][1] + DISK_PARTS[-1][2] + 2048


def make_disk(path, vol1g):
    """The disk case's GPT disk (sparse, cached): a 100 MiB ESP (FAT32) with 40 MB of files, a
    16 MiB MSR (zeros, as Windows leaves it), and two copies of the 1 GiB volume."""
    if os.path.exists(path):
        return
    tmp = path + ".tmp"
    rm(tmp)
    sh(["truncate", "-s", str(DISK_SECTORS * 512), tmp])
    types = {"esp": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
             "msr": "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"}
    table = "label: gpt\n" + "".join(
        "start=%d,size=%d,type=%s\n" % (st, n, types.get(name, "EBD0A0A2-B9E5-4433-87C0-68B6B7263599"))
        for name, st, n in DISK_PARTS)
    sh(["sfdisk", "-q", tmp], input=table.encode())
    work = tempfile.mkdtemp(prefix="ntfsclone-bench-esp-")
    try:
        esp = os.path.join(work, "esp")
        sh(["truncate", "-s", str(DISK_PARTS[0][2] * 512), esp])
        sh(["mkfs.vfat", "-F", "32", "-n", "ESP", esp], stdout=subprocess.DEVNULL)
        files = os.path.join(work, "EFI")
        os.makedirs(os.path.join(files, "Microsoft", "Boot"))
        for i in range(40):
            with open(os.path.join(files, "Microsoft", "Boot", "f%02d.bin" % i), "wb") as f:
                f.write(os.urandom(MiB))
        sh(["mcopy", "-s", "-i", esp, files, "::/"], env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
        for name, src in (("esp", esp), ("p3", vol1g), ("p4", vol1g)):
            start = [st for n, st, _ in DISK_PARTS if n == name][0]
            sh(["dd", "if=" + src, "of=" + tmp, "bs=4M", "oflag=seek_bytes", "seek=%d" % (start * 512),
                "conv=notrunc,sparse", "status=none"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.rename(tmp, path)


class Loops:
    """Loop devices (losetup), detached by close()."""

    def __init__(self):
        self.devs = []

    def add(self, path, start=0, sectors=None, ro=False):
        cmd = ["losetup", "-f", "--show", "-o", str(start * 512)]
        if sectors is not None:
            cmd += ["--sizelimit", str(sectors * 512)]
        if ro:
            cmd.append("-r")
        dev = subprocess.run(cmd + [path], check=True, capture_output=True,
                             text=True).stdout.strip()
        self.devs.append(dev)
        return dev

    def close(self):
        for d in self.devs:
            subprocess.run(["losetup", "-d", d])
        self.devs = []


def bench_disk(label, disk, work):
    """The disk case: rows as bench_set's. The source disk and the restore target are loop
    devices over tmpfs files (the whole disk for --disk, one per partition for one by one)."""
    loops = Loops()
    tgt = os.path.join(work, "target")
    sh(["truncate", "-s", str(DISK_SECTORS * 512), tgt])
    try:
        src_disk = loops.add(disk, ro=True)
        tgt_disk = loops.add(tgt)
        src_p = {n: loops.add(disk, st, k, ro=True) for n, st, k in DISK_PARTS}
        tgt_p = {n: loops.add(tgt, st, k) for n, st, k in DISK_PARTS if n in ("p3", "p4")}
        out = os.path.join(work, "out")
        out_dir = os.path.join(work, "out-parts")
        parts = {"ours": os.path.join(work, "ours-parts"), "ntfsclone": os.path.join(work, "ref-parts")}
        disk_img = os.path.join(work, "ours-disk.img")
        binary = {"ours": OURS, "ntfsclone": REF}
        # The bytes outside the NTFS partitions, copied with dd: head (table and the gap before
        # the ESP), ESP, MSR, backup GPT (the last 33 sectors).
        rest = [("head", 0, 2048)] + [(n, st, k) for n, st, k in DISK_PARTS[:2]] + \
               [("gpt2", DISK_SECTORS - 33, 33)]

        def save_parts(tool, d):
            cmds = ["rm -rf %s && mkdir %s" % (d, d)]
            cmds += ["dd if=%s of=%s/%s.dd bs=1M iflag=skip_bytes,count_bytes skip=%d count=%d "
                     "status=none" % (src_disk, d, n, st * 512, k * 512) for n, st, k in rest]
            cmds += ["%s -q -s -O %s/%s.img %s" % (binary[tool], d, n, src_p[n]) for n in ("p3", "p4")]
            return ["sh", "-ec", " && ".join(cmds)]

        def restore_parts(tool, d):
            cmds = ["dd if=%s/%s.dd of=%s bs=1M oflag=seek_bytes seek=%d conv=notrunc,fsync "
                    "status=none" % (d, n, tgt_disk, st * 512) for n, st, _ in rest]
            cmds += ["%s -q -r -O %s %s/%s.img" % (binary[tool], tgt_p[n], d, n) for n in ("p3", "p4")]
            return ["sh", "-ec", " && ".join(cmds)]

        def flush(devs):
            # Every run reads and writes through cold loop page caches (the tmpfs files stay).
            for d in devs:
                sh(["blockdev", "--flushbufs", d])

        def fresh_save(path):
            shutil.rmtree(path, True) if os.path.isdir(path) else rm(path)
            flush([src_disk] + list(src_p.values()))

        def blank_target():
            # Punch the file empty, then drop the loop devices' stale page cache.
            sh(["fallocate", "-p", "-o", "0", "-l", str(DISK_SECTORS * 512), tgt])
            flush([tgt_disk] + list(tgt_p.values()))

        # The images the restores read.
        sh([OURS, "-q", "-s", "--disk", "-O", disk_img, src_disk], stdout=subprocess.DEVNULL)
        for tool, d in parts.items():
            sh(save_parts(tool, d), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tools = {
            "save": [("ours", lambda: [OURS, "-q", "-s", "--disk", "-O", out, src_disk],
                      lambda: fresh_save(out))]
            + [("%s one by one" % t, lambda t=t: save_parts(t, out_dir), lambda: fresh_save(out_dir))
               for t in parts],
            "restore": [("ours", lambda: [OURS, "-q", "-r", "--disk", "-O", tgt_disk, disk_img], blank_target)]
            + [("%s one by one" % t, lambda t=t: restore_parts(t, parts[t]), blank_target) for t in parts],
        }
        rows = []
        for op in ("save", "restore"):
            if not wanted(label, op):
                continue
            rows += run_rounds(label, op, tools[op], False)
            rm(out)
            shutil.rmtree(out_dir, True)
        return rows
    finally:
        loops.close()


def verdicts(rows, nr_clusters_2g, nr_clusters_64g):
    """The issue's targets, each with the measured ratio and PASS/FAIL."""
    t = {(c, o, n): (w, u, r) for c, o, n, w, u, r in rows}
    out = []

    def check(text, ok):
        out.append("- %s: %s" % (text, "PASS" if ok else "FAIL"))

    for op in ("save", "restore", "clone"):
        key = ("hot (tmpfs)", op)
        ours = t.get(key + ("ours",))
        if not ours:
            continue
        for name, limit, how in (("dd", 1.15, "within 15 %% of dd bs=4M"),
                                 ("ntfsclone", None, ">= 1.5x faster than ntfsclone"),
                                 ("partclone", None, ">= 3x faster than partclone.ntfs")):
            other = t.get(key + (name,))
            if not other:
                continue
            ratio = ours[0] / other[0]
            cpu_ratio = ours[1] / other[1] if other[1] else float("nan")
            if name == "dd":
                lim = 1.0 if op == "clone" else 1.15
                text = ("hot %s: ours/dd = %.2f wall, %.2f CPU (target <= %.2f)"
                        % (op, ratio, cpu_ratio, lim))
                check(text, ratio <= lim)
            else:
                need = 1.5 if name == "ntfsclone" else 3.0
                check("hot %s: %s/ours = %.2f (target >= %.1f)" % (op, name, 1 / ratio, need),
                      1 / ratio >= need)
    for op in ("save", "clone"):
        ours = t.get(("cold (disk)", op, "ours"))
        ceil = t.get(("cold (disk)", op, "read ceiling"))
        if ours and ceil:
            check("cold %s: ours/read ceiling = %.2f (target <= 1.15)" % (op, ours[0] / ceil[0]),
                  ours[0] / ceil[0] <= 1.15)
    for op in ("save", "clone"):
        ours = t.get(("64 GiB empty", op, "ours"))
        ref = t.get(("64 GiB empty", op, "ntfsclone"))
        if ours and ref:
            check("64 GiB %s: ours/ntfsclone = %.2f (target <= 1.0)" % (op, ours[0] / ref[0]),
                  ours[0] <= ref[0])
    for op in ("save", "restore"):
        ours = t.get(("disk (tmpfs)", op, "ours"))
        parts = t.get(("disk (tmpfs)", op, "ours one by one"))
        if ours and parts:
            check("disk %s: ours --disk / ours one by one + dd = %.2f (target <= 1.10)"
                  % (op, ours[0] / parts[0]), ours[0] / parts[0] <= 1.10)
    for case, nr in (("hot (tmpfs)", nr_clusters_2g), ("cold (disk)", nr_clusters_2g),
                     ("64 GiB empty", nr_clusters_64g)):
        peaks = [r for (c, o, n), (_, _, r) in t.items() if c == case and n == "ours"]
        if peaks:
            limit = 16 * 1024 + (nr + 1) / 8 / 1024
            check("%s peak RSS: %.1f MiB (target <= 16 MiB + 1 bit/cluster = %.1f MiB)"
                  % (case, max(peaks) / 1024, limit / 1024), max(peaks) <= limit)
    return out


def nr_clusters(vol):
    """(nr_clusters, used bytes) from the header of the reference's image of `vol` (only the
    header is read from its pipe)."""
    p = subprocess.Popen([REF, "-s", "-o", "-", vol], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    hdr = p.stdout.read(56)
    p.kill()
    p.wait()
    cs = int.from_bytes(hdr[18:22], "little")
    return (int.from_bytes(hdr[30:38], "little", signed=True),
            int.from_bytes(hdr[38:46], "little") * cs)


def volumes():
    """The cached volumes of the cases ONLY= selects: (2 GiB, 64 GiB, disk), None when not."""
    os.makedirs(CACHE, exist_ok=True)
    vol_disk = os.path.join(CACHE, "vol2g.img")
    big = os.path.join(CACHE, "vol64g.img")
    disk = os.path.join(CACHE, "disk-gpt.img")
    want = lambda case: wanted(case, "save") or wanted(case, "restore") or wanted(case, "clone")
    if want("hot") or want("cold"):
        make_volume(vol_disk, 2 << 30, True)
    if want("big"):
        make_volume(big, 64 << 30, False)
    if want("zstd"):
        make_mixed_volume(os.path.join(CACHE, "vol2g-mixed.img"))
    if want("disk"):
        vol1g = os.path.join(CACHE, "vol1g.img")
        make_volume(vol1g, 1 << 30, True)
        make_disk(disk, vol1g)
    return (vol_disk if os.path.exists(vol_disk) else None,
            big if os.path.exists(big) else None,
            disk if want("disk") else None)


def main():
    if sys.argv[1:2] == ["--read-ceiling"]:
        return read_ceiling(sys.argv[2], sys.argv[3])
    if sys.argv[1:2] == ["--volumes"]:
        volumes()
        return
    for tool in (OURS, REF, PC, TIME, ZSTD):
        if not os.path.exists(tool):
            raise SystemExit("missing %s (make bench builds ours; make deps installs the others; "
                             "apt-get install time)" % tool)
    vol_disk, big, disk = volumes()
    waited = settle()
    load0 = os.getloadavg()[0]
    used = nr_clusters(vol_disk)[1] if vol_disk else 0
    rows = []
    zsizes = None
    shm = tempfile.mkdtemp(prefix="ntfsclone-bench-", dir="/dev/shm")
    try:
        if wanted("zstd", "save") or wanted("zstd", "restore"):
            vol_mixed = os.path.join(shm, "mixed.img")
            shutil.copyfile(os.path.join(CACHE, "vol2g-mixed.img"), vol_mixed)
            settle()
            zrows, zsizes = bench_zstd(vol_mixed, shm)
            rows += zrows
            rm(vol_mixed)
        if wanted("hot", "save") or wanted("hot", "restore") or wanted("hot", "clone"):
            vol_shm = os.path.join(shm, "vol.img")
            shutil.copyfile(vol_disk, vol_shm)
            settle()
            rows += bench_set("hot (tmpfs)", vol_shm, shm, False)
            rm(vol_shm)
        if wanted("cold", "save") or wanted("cold", "clone"):
            settle()
            rows += bench_set("cold (disk)", vol_disk, shm, True, ops=("save", "clone"))
        if wanted("big", "save") or wanted("big", "clone"):
            settle()
            rows += bench_set("64 GiB empty", big, shm, False, ops=("save", "clone"))
        if disk:
            disk_shm = os.path.join(shm, "disk.img")
            sh(["cp", "--sparse=always", disk, disk_shm])
            settle()
            rows += bench_disk("disk (tmpfs)", disk_shm, shm)
            rm(disk_shm)
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t")
    mem = int(open("/proc/meminfo").read().split()[1]) // 1024 // 1024
    lines = ["Machine: %d cores (%s), %d GiB RAM, kernel %s; load average %.1f before, %.1f after "
             "(waited %.0f s for an idle CPU first)."
             % (os.cpu_count(), cpu, mem, os.uname().release, load0, os.getloadavg()[0], waited),
             ("Volume: 2 GiB with %.2f GB used (4 KiB clusters). " % (used / 1e9) if vol_disk else "")
             + ("Disk: GPT, 100 MiB ESP, 16 MiB MSR, two 1 GiB NTFS partitions. " if disk else "")
             + "%d rounds, medians. Ratios are tool / ours (above 1: ours is faster)." % ROUNDS, "",
             "| case | op | tool | wall s | vs ours | CPU s | vs ours | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    ours_t = {(c, o): (w, u) for c, o, n, w, u, _ in rows
              if n in ("ours", "ours --zstd")}
    for c, o, n, w, u, r in rows:
        ow, ou = ours_t[(c, o)]
        lines.append("| %s | %s | %s | %.3f | %.2fx | %.3f | %.2fx | %.1f |"
                     % (c, o, n, w, w / ow, u, u / ou if ou else float("nan"), r / 1024))
    lines += ["", "Targets (issue #5):"]
    lines += verdicts([r for r in rows if r[0] != "zstd (tmpfs)"],
                      nr_clusters(vol_disk)[0] if vol_disk else 0,
                      nr_clusters(big)[0] if big else 0)
    zv = zstd_verdicts(rows, zsizes)
    if zv:
        lines += ["", "Compression targets (zstd issue):"] + zv
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(CACHE, "results.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
