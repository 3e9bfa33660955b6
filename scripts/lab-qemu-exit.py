#!/usr/bin/env python3
"""How long 16 busy TCG QEMUs (daemonized, like the lab's) take to be gone after SIGTERM: the leader's own
state (the former alive()) against every thread's (the new one). Usage: lab-qemu-exit.py [N [SECONDS]];
needs a kernel (hal's netboot tests download Debian's into target/netboot-test-cache)."""
import glob, os, signal, subprocess, sys, time
N = int(sys.argv[1]) if len(sys.argv) > 1 else 16
K = glob.glob("target/netboot-test-cache/kernel-*/boot/vmlinuz-*")[0]
pids = []
for i in range(N):
    os.makedirs("/tmp/lab-qemu-exit", exist_ok=True)
    pf = "/tmp/lab-qemu-exit/q%d.pid" % i
    subprocess.run(["qemu-system-x86_64", "-name", "x,process=hwexpt-%d" % i, "-machine", "pc", "-accel", "tcg", "-cpu", "max",
                    "-m", "512", "-nodefaults", "-display", "none", "-serial", "null", "-kernel", K, "-append", "console=ttyS0 panic=-1",
                    "-daemonize", "-pidfile", pf], check=True)
    pids.append(int(open(pf).read()))
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 20)
def state(path):
    try:
        s = open(path).read()
        return s.rsplit(") ", 1)[1][0]
    except Exception:
        return None
def leader_alive(p):
    st = state("/proc/%d/stat" % p)
    return st is not None and st not in "ZX"
def any_thread_alive(p):
    try:
        tids = os.listdir("/proc/%d/task" % p)
    except Exception:
        return False
    return any((state("/proc/%d/task/%s/stat" % (p, t)) or "Z") not in "ZX" for t in tids)
t0 = time.time()
for p in pids:
    os.kill(p, signal.SIGTERM)
lead, thr, gone = {}, {}, {}
while len(gone) < N and time.time() - t0 < 30:
    now = time.time() - t0
    for p in pids:
        if p not in lead and not leader_alive(p): lead[p] = now
        if p not in thr and not any_thread_alive(p): thr[p] = now
        if p not in gone and not os.path.exists("/proc/%d" % p): gone[p] = now
    time.sleep(0.01)
for p in pids:
    if os.path.exists("/proc/%d" % p):
        os.kill(p, signal.SIGKILL)
f = lambda d: "max %.2f s, median %.2f s, n %d" % (max(d.values()), sorted(d.values())[len(d)//2], len(d)) if d else "none"
print("N", N, "after SIGTERM: leader not running", f(lead), "| every thread gone", f(thr), "| /proc entry gone", f(gone))
print("load", open("/proc/loadavg").read().strip())
