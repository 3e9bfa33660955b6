#!/usr/bin/env python3
"""Sends the same requests to two kadeploy3d binaries and prints every difference in their answers
(status, headers, body), to check that a rework of the HTTP layer changed no behaviour.

    scripts/api-diff.py OLD_KADEPLOY3D NEW_KADEPLOY3D [--show N]

Both serve a copy of the sample configuration (simulator/config/sim300) over plain HTTP with the
loopback ACL on, each on its own database. The requests
cover every resource with every method, odd paths (empty segments, escapes, deep paths), bodies (broken
JSON/YAML, wrong types, too large), headers (Accept, gzip) and users (none, root, bob), then real
submissions with invalid parameters in many combinations. Workflow ids, console ids and secrets, ports,
dates and durations are normalized before comparing. Exits 1 on any difference."""

import argparse
import base64
import gzip
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "simulator" / "config" / "sim300"


class Server:
    def __init__(self, binary, dir):
        conf = dir / "conf"
        shutil.copytree(SAMPLE, conf)
        text = (conf / "server.conf").read_text()
        text = text.replace("secure_server: true", "secure_server: false").replace("\n  # acl: {", "\n  acl: {")
        (conf / "server.conf").write_text(text)
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf), "--bind", "127.0.0.1:0", "--database", str(dir / "db.sqlite")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.wids = {}

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def recv_all(s):
    chunks = []
    while True:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def exchange(port, raw):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(60)
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = recv_all(s)
    s.close()
    return data


def dechunk(b):
    out = b""
    while True:
        eol = b.find(b"\r\n")
        if eol < 0:
            return out
        size = int(b[:eol].strip() or b"0", 16)
        if size == 0:
            return out
        out += b[eol + 2:eol + 2 + size]
        b = b[eol + 2 + size + 2:]


def parse(data):
    """Status, headers (lower-cased names, in order, Date removed) and decoded body of each answer."""
    answers = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            answers.append(("garbage", [], data))
            break
        head = data[:end].decode("latin-1").split("\r\n")
        status = head[0]
        headers = [tuple(x.strip() for x in h.split(":", 1)) for h in head[1:] if ":" in h]
        headers = [(k.lower(), v) for k, v in headers if k.lower() != "date"]
        rest = data[end + 4:]
        h = dict(headers)
        if "chunked" in h.get("transfer-encoding", ""):
            body, rest = dechunk(rest), b""
        else:
            n = int(h.get("content-length", "0"))
            body, rest = rest[:n], rest[n:]
        if h.get("content-encoding") == "gzip" and body:
            body = gzip.decompress(body)
        answers.append((status, headers, body))
        data = rest
    return answers


UUID = re.compile(rb"[DRPC]-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sort_items(body):
    """Workflow and console lists come in id order, and ids are random: their items are sorted."""
    try:
        v = json.loads(body)
        if isinstance(v, list):
            return json.dumps(sorted(v, key=lambda x: json.dumps(x, sort_keys=True)), indent=2).encode()
    except ValueError:
        pass
    if body.startswith(b"---\n- "):
        items = body[len(b"---\n"):].split(b"\n- ")
        return b"---\n" + b"\n- ".join(sorted(items))
    return body


def normalize(answer):
    status, headers, body = answer
    body = UUID.sub(b"<ID>", body)
    body = re.sub(rb'"(time|start_time|secret)": ?[0-9a-f.]+', rb'"\1": "<N>"', body)
    body = re.sub(rb'"secret": ?"[0-9a-f]+"', rb'"secret": "<S>"', body)
    body = re.sub(rb"tcp://[^\"\s]+:[0-9]+", b"tcp://<H>:<P>", body)
    body = re.sub(rb":?(time|start_time): [0-9.]+", rb"\1: <N>", body)
    body = re.sub(rb"\d{10}\.\d{5}\|", b"<T>|", body)
    body = sort_items(body)
    if ("content-type", "text/csv") in headers:
        body = b"\n".join(sorted(body.split(b"\n")))
    out = []
    for k, v in headers:
        if k == "x-application-error-info":
            v = UUID.sub(b"<ID>", base64.b64decode(v)).decode("utf-8", "replace")
        if k == "content-length":
            v = "<L>"
        out.append((k, v))
    return status, out, body


def request(method, path, user="root", body=None, ctype="application/json", headers=(), accept="application/json",
            encoding="gzip;q=1.0,deflate;q=0.6,identity;q=0.3"):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if user is not None:
        lines.append(f"X-Kadeploy-User: {user}")
    if accept is not None:
        lines.append(f"Accept: {accept}")
    if encoding is not None:
        lines.append(f"Accept-Encoding: {encoding}")
    lines += [f"{k}: {v}" for k, v in headers]
    raw = b""
    if body is not None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if ctype is not None:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body)}")
        raw = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FOO"]
PATHS = [
    "/", "//", "/version", "/version/", "//version//", "/version/x", "/%76ersion", "/info", "/info/x",
    "/clusters", "/auth_headers_prefix", "/unknown", "/%", "/abc%", "/%zz", "/a%2Fb",
    "/deployment", "/deployment/", "/deployment//", "/deployment/D-x", "/deployment/D-x/state",
    "/deployment/D-x/a/b/c", "/deployment/%FF", "/reboot", "/reboot/R-1/logs", "/power", "/power/",
    "/power?nodes=node-1", "/power?nodes=node-%5B1-3%5D", "/power?nodes=nope",
    "/environments", "/environments/", "/environments/root", "/environments/root/debian12",
    "/environments/root/debian12/1", "/environments/root/debian12/x", "/environments/bob/debian12/1",
    "/environments/root/nope", "/environments/a/b/c/d", "/environments/a%2Fb/c", "/environments?last",
    "/environments?name=debian12", "/environments?username=root&version=1", "/environments?version=z",
    "/rights", "/rights/", "/rights/bob", "/rights/root", "/rights/bob/node-1", "/rights/bob/node-1/x/y",
    "/rights?nodes=node-1", "/rights?nodes=nope", "/rights?nodes=*",
    "/nodes", "/nodes/node-1", "/nodes/node-1.sim.kadeploy", "/nodes/node-1/x", "/nodes/%", "/nodes/node-1%",
    "/nodes?list", "/nodes?list&nodes=nope", "/nodes?nodes=node-[1-3]", "/nodes?nodes=nope", "/nodes/nope",
    "/stats", "/stats/deploy", "/stats/reboot", "/stats/foo", "/stats/deploy/x", "/stats?kind=failure_rates",
    "/stats?fields=nope", "/stats?date_min=x", "/stats?step_retries=9", "/stats?kind=zz",
    "/stats?kind=failure_rates&min_failure_rate=x", "/stats?limit=x", "/stats?fields=hostname&sort=wid",
    "/console", "/console/", "/console/C-x", "/console/C-x/error", "/console/C-x/a/b", "/console/C-x/a",
]
USERS = [None, "root", "bob"]


def matrix():
    for path in PATHS:
        for method in METHODS:
            for user in USERS:
                yield f"{method} {path} as {user}", request(method, path, user)
    bodies = [
        ("empty json", "", "application/json"),
        ("spaces", "  \n ", "application/json"),
        ("object", "{}", "application/json"),
        ("broken json", "{", "application/json"),
        ("array", "[1]", "application/json"),
        ("number", "3", "application/json"),
        ("yaml", "nodes: [node-1]\n", "application/x-yaml"),
        ("broken yaml", "a: [\n", "application/x-yaml"),
        ("text/yaml", "{}", "text/yaml"),
        ("html", "<a/>", "text/html"),
        ("no type", "{}", None),
        ("latin1", b"{\"a\": \"\xe9\"}", "application/json"),
        ("utf8 charset", "{}", "application/json; charset=utf-8"),
    ]
    for (name, body, ctype), path, method, user in itertools.product(
            bodies, ["/deployment", "/environments", "/rights", "/version", "/unknown", "/console", "/power"],
            ["POST", "PUT", "GET"], [None, "root"]):
        yield f"{method} {path} body {name} as {user}", request(method, path, user, body, ctype)
    big = b"{\"a\": \"" + b"x" * (1 << 20) + b"\"}"
    for path in ["/deployment", "/unknown", "/version"]:
        yield f"POST {path} 1MiB", request("POST", path, "root", big)
        yield f"POST {path} 1MiB no user", request("POST", path, None, big)
    for accept, path in itertools.product(
            ["application/x-yaml", "text/html", "*/*", "", "application/x-yaml, application/json", "text/*"],
            ["/version", "/unknown", "/nodes?nodes=node-1", "/deployment", "/environments", "/info", "/stats",
             "/rights/root"]):
        yield f"GET {path} accept {accept}", request("GET", path, "root", accept=accept)
    for enc in ["gzip", "*", "gzip, *", "", "deflate"]:
        for path in ["/version", "/nodes?nodes=node-1", "/stats", "/deployment/D-x"]:
            yield f"GET {path} encoding {enc}", request("GET", path, "root", encoding=enc)
    yield "chunked", ("POST /deployment HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Kadeploy-User: root\r\n"
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").encode()
    yield "pipelined", (request("GET", "/%", "root").replace(b"Connection: close\r\n", b"")
                        + request("GET", "/version", None))
    yield "absolute form", b"GET http://127.0.0.1/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


DEBIAN = {"name": "debian12", "version": 1, "visibility": "shared", "os": "linux", "filesystem": "ext4",
          "image": {"file": "server:///envs/debian12.tgz", "kind": "tar", "compression": "gzip"},
          "boot": {"kernel": "/vmlinuz"}}

SUBMISSION_PARAMS = [
    {}, {"nodes": "node-1"}, {"nodes": ["node-1"]}, {"nodes": 3}, {"nodes": [{}]}, {"nodes": "nope"},
    {"nodes": "node-[1-400]"}, {"nodes": "node-[1"}, {"verbose_level": 9}, {"verbose_level": "x"},
    {"vlan": "1"}, {"custom_operations": 3}, {"custom_operations": {"Nope": {}}},
    {"custom_operations": {"SetDeploymentEnv": {"format_swap_part": {"pre-ops": [
        {"action": "send", "name": "f", "file": "/etc/x", "destination": "/tmp"}]}}}},
    {"custom_operations": {"Reboot": {"reboot": {"pre-ops": [{"action": "exec", "name": "x", "command": "true"}]}}}},
    {"environment": {"name": "debian12"}}, {"environment": {"name": "debian12", "version": 1}},
    {"environment": {"name": "debian12", "version": 4294967297}}, {"environment": {"name": "nope"}},
    {"environment": {"kind": "weird"}}, {"environment": {"kind": "database"}}, {"environment": "x"},
    {"environment": {"name": "debian12", "user": "bob"}},
    {"environment": dict(DEBIAN, kind="anonymous")},
    {"environment": dict(DEBIAN, kind="anonymous", image={"file": "/local.tgz", "kind": "tar", "compression": "gzip"})},
    {"breakpoint": "a b"}, {"breakpoint": "SetDeploymentEnv:format_swap_part"}, {"block_device": 3},
    {"block_device": "/dev/sdb"}, {"deploy_partition": ""}, {"deploy_partition": "x"}, {"deploy_partition": 4},
    {"boot_partition": "x"}, {"boot_partition": -1}, {"reformat_tmp_partition": {}}, {"disable_kexec": True},
    {"timeout_reboot_classical": "n +"}, {"timeout_reboot_kexec": "100"}, {"automata": 3}, {"automata": {}},
    {"ssh_authorized_keys": "server:///nope"}, {"ssh_authorized_keys": []}, {"pxe": 3},
    {"pxe": {"profile": "x"}}, {"pxe": {"files": [3]}}, {"pxe": {"files": ["server:///nope"]}},
    {"kind": "simple"}, {"kind": "set_pxe"}, {"kind": "recorded_env"}, {"kind": "deploy_env"}, {"kind": "x"},
    {"kind": "simple", "check_destructive": True}, {"kind": "recorded_env", "deploy_partition": "2"},
    {"level": "x"}, {"level": "hard"}, {"status": "on"}, {"status": "x"}, {"status": "off"},
    {"force": True}, {"dry_run": True}, {"client": "http://127.0.0.1:1"}, {"unknown_param": 1},
]


def submissions():
    """Pairs and triples of parameters on each submission route, as root and bob, all dry runs except
    those the run() step replays for real."""
    base = {"nodes": ["node-1"], "environment": {"name": "debian12"}, "kind": "simple", "status": "on"}
    singles = SUBMISSION_PARAMS
    combos = [dict(a, **b) for a, b in itertools.combinations(singles, 2)]
    for route, method in [("/deployment", "POST"), ("/reboot", "POST"), ("/power", "PUT"), ("/power", "GET")]:
        for i, extra in enumerate(singles + combos[::7]):
            for user in ["root", "bob"]:
                params = dict(base, dry_run=True)
                params.update(extra)
                if method == "GET":
                    q = "&".join(f"{k}={x}" for k, v in params.items()
                                 for x in (v if isinstance(v, list) else [v]) if isinstance(x, (str, int, bool)))
                    yield f"GET {route}?{q} as {user}", request("GET", f"{route}?{q}", user)
                else:
                    yield f"{method} {route} {json.dumps(extra)} as {user}", request(method, route, user, params)


def seed(h):
    out = []
    out.append(request("POST", "/rights", "root", {"nodes": ["*"], "partitions": ["*"], "username": "root"}))
    out.append(request("POST", "/rights", "root", {"nodes": ["node-5"], "partitions": ["/dev/sda3"], "username": "bob"}))
    out.append(request("POST", "/environments", "root", {"environment": DEBIAN}))
    out.append(request("POST", "/environments", "bob", {"environment": dict(DEBIAN, name="bobenv", visibility="private")}))
    return out


def workflows():
    """Real workflows, then their resources (followed with each server's own ids)."""
    yield "deploy", "POST", "/deployment", {"nodes": ["node-[1-3]"], "environment": {"name": "debian12"}}
    yield "reboot", "POST", "/reboot", {"nodes": ["node-[4-6]"], "kind": "simple"}
    yield "power", "PUT", "/power", {"nodes": ["node-[7-8]"], "status": "off"}
    yield "status", "GET", "/power?nodes=node-9", None
    yield "bob deploy", "POST", "/deployment", {"nodes": ["node-5"], "environment": {"name": "debian12", "user": "root"}}
    yield "recorded", "POST", "/reboot", {"nodes": ["node-10"], "kind": "recorded_env", "deploy_partition": "2",
                                         "environment": {"name": "debian12"}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--show", type=int, default=40, help="differences shown in full")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="api-diff-"))
    servers = [Server(args.old, tmp / "old"), Server(args.new, tmp / "new")]
    diffs, total = [], 0

    def compare(name, raws):
        nonlocal total
        total += 1
        got = [[normalize(a) for a in parse(exchange(s.port, raw))] for s, raw in zip(servers, raws)]
        if got[0] != got[1]:
            diffs.append((name, got))
        return got

    try:
        for raw in seed(None):
            for s in servers:
                exchange(s.port, raw)
        for name, raw in itertools.chain(matrix(), submissions()):
            compare(name, [raw, raw])
        for name, method, path, body in workflows():
            answers = []
            for s in servers:
                data = parse(exchange(s.port, request(method, path, "bob" if name.startswith("bob") else "root", body)))
                answers.append(data)
                m = UUID.search(data[0][2]) if data else None
                if m:
                    s.wids[name] = m.group(0).decode()
            if [normalize(a) for a in answers[0]] != [normalize(a) for a in answers[1]]:
                diffs.append((f"{method} {path} ({name})", [[normalize(a) for a in x] for x in answers]))
            total += 1
        time.sleep(2)
        for name, (base, sub) in itertools.product(
                [w[0] for w in workflows()],
                [("deployment", ""), ("deployment", "/state"), ("deployment", "/status"), ("deployment", "/logs"),
                 ("deployment", "/logs/sim"), ("deployment", "/logs/x"), ("deployment", "/error"),
                 ("deployment", "/debugs"), ("deployment", "/x"), ("deployment", "/state/x"),
                 ("deployment", "/a/b/c")]):
            if not all(name in s.wids for s in servers):
                continue
            kind = {"D": "deployment", "R": "reboot", "P": "power"}[servers[0].wids[name][0]]
            for user, method in [("root", "GET"), ("bob", "GET"), ("root", "PUT")]:
                compare(f"{method} /{kind}/<{name}>{sub} as {user}",
                        [request(method, f"/{kind}/{s.wids[name]}{sub}", user) for s in servers])
        for path in ["/deployment", "/reboot", "/power", "/nodes?nodes=node-[1-10]", "/stats?kind=all",
                     "/stats/deploy?fields=hostname&fields=success", "/stats?kind=failure_rates"]:
            for user in ["root", "bob"]:
                compare(f"GET {path} as {user} after", [request("GET", path, user)] * 2)
        # Consoles: open, list, read, delete.
        for s in servers:
            data = parse(exchange(s.port, request("POST", "/console", "root", {"node": "node-1"})))
            m = UUID.search(data[0][2])
            s.wids["console"] = m.group(0).decode() if m else "C-none"
        for sub, method, user in itertools.product(["", "/error", "/x", "/a/b"], ["GET", "DELETE", "POST"],
                                                   ["root", "bob"]):
            compare(f"{method} /console/<id>{sub} as {user}",
                    [request(method, f"/console/{s.wids['console']}{sub}", user) for s in servers])
        for name in ["deploy", "reboot"]:
            if all(name in s.wids for s in servers):
                kind = {"D": "deployment", "R": "reboot", "P": "power"}[servers[0].wids[name][0]]
                for user in ["bob", "root"]:
                    compare(f"DELETE /{kind}/<{name}> as {user}",
                            [request("DELETE", f"/{kind}/{s.wids[name]}", user) for s in servers])
        for path, body in [("/rights/bob", None), ("/rights/bob/node-5", None), ("/environments/root/debian12/1", None),
                           ("/environments/bob/bobenv", None)]:
            compare(f"DELETE {path}", [request("DELETE", path, "root", body)] * 2)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{total} exchanges, {len(diffs)} difference(s)")
    for name, (old, new) in diffs[:args.show]:
        print(f"--- {name}")
        print(f"  old: {old}")
        print(f"  new: {new}")
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
