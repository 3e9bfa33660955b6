#!/usr/bin/env python3
"""A lab window's replay (docs/PERFORMANCE.md, window H): every calibration's simulation.conf (`kalab
calibrate`) on a copy of every target's sim/ configuration, kasim averaged over seeds 1..K; and the same with
the calibration's processor work scaled by the host-speed reference (the report's `host.reference` on one
processor and `host.reference_all` on every processor, timed just before each run's clock) of the target over
the calibration's. First, every run's host speed: the reference's
processor and wall seconds, steal over the run and the deployment, and the first boot's processor seconds per VM.
Usage: lab-window-replay.py K CAL1,CAL2,.. TGT1,TGT2,.. where each run NAME was `kalab e2e --dir
${RUNS}NAME > ${RUNS}NAME.out 2> ${RUNS}NAME.err` (RUNS, a path prefix: env KALAB_RUNS, default /tmp/hwh-)."""
import glob, json, os, re, shutil, subprocess, sys, statistics

ROOT = os.environ.get("KALAB_RUNS", "/tmp/hwh-")
BIN = os.environ.get("KALAB_BIN", "target/debug")
KASIM = os.environ.get("KASIM", BIN + "/kasim")
K = int(sys.argv[1])
cals = sys.argv[2].split(",")
tgts = sys.argv[3].split(",")
image = glob.glob(os.environ.get("KALAB_CACHE", "/work/main/target/kalab-images") + "/env-tar-*/kalab-linux.tgz")
image = sorted(image, key=os.path.getmtime)[-1]

def report(name):
    return json.loads(open(ROOT + name + ".out").read().strip().splitlines()[-1])

def conf_of(cal, busy=None):
    cmd = [BIN + "/kalab", "calibrate", "--output", ROOT + cal + ".err", "--timeline", ROOT + cal + "/timeline.json",
           "--report", ROOT + cal + ".out", "--image", image, "--server-log", ROOT + cal + "/kadeploy3d.log"]
    if busy is not None:
        cmd += ["--busy-load", str(busy)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

def swap(conf, calib):
    m = re.search(r"firmware ([\d.]+) s -> ([\d.]+) s \(([\d.]+) -> ([\d.]+) processor s\)", calib)
    if not m:
        return conf
    f0, f1, c0, c1 = map(float, m.groups())
    mean = float(re.search(r"firmware: \{mean: ([\d.]+)", conf).group(1))
    share = float(re.search(r"cpu: \{firmware: ([\d.]+)", conf).group(1))
    new = max(mean + f1 - f0, 0.1)
    nshare = min(max((mean * share + c1 - c0) / new, 0.0), 1.0)
    conf = re.sub(r"firmware: \{mean: [\d.]+", "firmware: {mean: %.2f" % new, conf)
    conf = re.sub(r"cpu: \{firmware: [\d.]+", "cpu: {firmware: %.3f" % nshare, conf)
    return conf

def reference(r, which="reference"):
    ref = (r.get("host") or {}).get(which) or {}
    return ref.get("cpu_seconds")

def scale_work(conf, k):
    """The guests' processor work times k: a boot phase or an SSH command of mean d with a share c of
    processor work lasts d (1 - c + c k) with a share c k / (1 - c + c k); the rest below."""
    shares = dict((m.group(1), float(m.group(2))) for m in re.finditer(r"(firmware|pxe|kernel): ([\d.]+)",
                  re.search(r"cpu: \{[^}]*\}", conf).group(0)))
    def phase(m):
        name, mean = m.group(1), float(m.group(2))
        c = shares.get(name, 0.0)
        return "%s: {mean: %.3f" % (name, mean * (1 - c + c * k))
    conf = re.sub(r"(firmware|pxe|kernel): \{mean: ([\d.]+)", phase, conf)
    def cpu(m):
        out = []
        for name in ("firmware", "pxe", "kernel"):
            c = shares.get(name, 0.0)
            d = 1 - c + c * k
            out.append("%s: %.3f" % (name, min(c * k / d, 1.0) if d > 0 else c))
        return "cpu: {" + ", ".join(out) + "}"
    conf = re.sub(r"cpu: \{[^}]*\}", cpu, conf, count=1)
    m = re.search(r"ssh_latency: ([\d.]+), cpu: ([\d.]+)", conf)
    if m:
        lat, c = float(m.group(1)), float(m.group(2))
        d = 1 - c + c * k
        conf = conf.replace(m.group(0), "ssh_latency: %.4f, cpu: %.3f" % (lat * d, min(c * k / d, 1.0)))
    # Under TCG the rest of the guests' work is processor work too: the VMs' loads (processors per
    # second), the operations (all processor work: ops.work_cpu 1.0) and kaagent's chain (the broadcast
    # goodput) cost k times as much.
    for key in ("idle_load", "busy_load"):
        conf = re.sub(r"(%s): ([\d.]+)" % key, lambda m: "%s: %.5f" % (m.group(1), float(m.group(2)) * k), conf)
    for key in ("kexec", "partition", "swap", "mount", "sync", "postinstall", "bootloader"):
        conf = re.sub(r"\b(%s): ([\d.]+)" % key, lambda m: "%s: %.4f" % (m.group(1), float(m.group(2)) * k), conf)
    for key in ("bandwidth", "server_bandwidth", "mkfs_rate"):
        conf = re.sub(r"(\n\s+|, )(%s): ([\d.e+]+)" % key,
                      lambda m: "%s%s: %.1f" % (m.group(1), m.group(2), float(m.group(3)) / k), conf)
    return conf

def predict(conf, tgt, nodes, seeds):
    d = "/tmp/hwh-replay/%s" % tgt
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(ROOT + tgt + "/sim", d)
    open(d + "/simulation.conf", "w").write(conf)
    ts = []
    for s in range(1, seeds + 1):
        out = subprocess.run([KASIM, "deploy", "--json", "-V", "0", "--key", "--seed", str(s), "--nodes", str(nodes),
                              "--config", d], capture_output=True, text=True)
        ts.append(json.loads(out.stdout.strip().splitlines()[-1])["virtual_seconds"])
    return statistics.mean(ts), (statistics.stdev(ts) if len(ts) > 1 else 0.0), ts

rows = {}
for t in tgts:
    r = report(t)
    nodes = r["nodes_ok"] + r["nodes_ko"]
    rows[t] = (r, nodes)
for n in cals + tgts:
    r = report(n)
    h = r.get("host") or {}
    ref = h.get("reference") or {}
    refall = h.get("reference_all") or {}
    boot = (r.get("boots") or {}).get("deploy_boot") or {}
    print("%s: reference %s processor s (%s wall s, %s waited), on every processor %s (%s wall), steal %s s over the run (share %s), %s s over the"
          " deployment; first boot %s processor s per VM; deploy %.1f s; start busy %s" % (
              n, ref.get("cpu_seconds"), ref.get("seconds"), ref.get("wait_seconds"), refall.get("cpu_seconds"),
              refall.get("seconds"), h.get("steal_seconds"),
              h.get("steal_share"), h.get("deploy_steal_seconds"), boot.get("cpu"), r["deploy_seconds"],
              (r.get("start") or {}).get("host_busy")))
print("targets:", {t: (rows[t][1], round(rows[t][0]["deploy_seconds"], 1), rows[t][0]["predicted_seconds"]) for t in tgts})
for c in cals:
    rc = report(c)
    conf = conf_of(c)
    sd = re.findall(r"(firmware|pxe|kernel): \{mean: ([\d.]+), sd: ([\d.]+)", conf)
    line = ["%s busy %.4f sd %s" % (c, rc.get("busy_load") or 0, " ".join("%s %s/%s" % x for x in sd))]
    for t in tgts:
        r, nodes = rows[t]
        cf = swap(conf, r["calibration"])
        confs = [(cf, "mean%d" % K)]
        for which, tag in (("reference", "ref1"), ("reference_all", "refall")):
            if reference(r, which) and reference(rc, which):
                k = reference(r, which) / reference(rc, which)
                confs.append((scale_work(cf, k), "%s x%.3f" % (tag, k)))
        for c_conf, tag in confs:
            mean, sdv, ts = predict(c_conf, t, nodes, K)
            err = (mean - r["deploy_seconds"]) / r["deploy_seconds"] * 100
            line.append("  %s -> %s (%d VMs, measured %.1f): %s %.1f s (%+.1f%%) sd %.1f range %.1f-%.1f" % (
                c, t, nodes, r["deploy_seconds"], tag, mean, err, sdv, min(ts), max(ts)))
    print("\n".join(line), flush=True)
