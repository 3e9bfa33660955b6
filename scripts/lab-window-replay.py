#!/usr/bin/env python3
"""A lab window's replay (docs/PERFORMANCE.md, window H): every calibration's simulation.conf (`kalab
calibrate`) on a copy of every target's sim/ configuration, kasim averaged over seeds 1..K, and one draw.
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
print("targets:", {t: (rows[t][1], round(rows[t][0]["deploy_seconds"], 1), rows[t][0]["predicted_seconds"]) for t in tgts})
for c in cals:
    rc = report(c)
    conf = conf_of(c)
    sd = re.findall(r"(firmware|pxe|kernel): \{mean: ([\d.]+), sd: ([\d.]+)", conf)
    line = ["%s busy %.4f sd %s" % (c, rc.get("busy_load") or 0, " ".join("%s %s/%s" % x for x in sd))]
    for t in tgts:
        r, nodes = rows[t]
        cf = swap(conf, r["calibration"])
        for seeds, tag in ((K, "mean%d" % K), (1, "seed1")):
            mean, sdv, ts = predict(cf, t, nodes, seeds)
            err = (mean - r["deploy_seconds"]) / r["deploy_seconds"] * 100
            line.append("  %s -> %s (%d VMs, measured %.1f): %s %.1f s (%+.1f%%) sd %.1f range %.1f-%.1f" % (
                c, t, nodes, r["deploy_seconds"], tag, mean, err, sdv, min(ts), max(ts)))
    print("\n".join(line), flush=True)
