//! Golden outputs of Ruby 3.1 (Psych 4.0.3, libyaml 0.2.5) `to_yaml` for the same values.

use super::super::ruby::{Key, Ruby};
use super::to_yaml;

fn s(v: &str) -> Ruby {
    Ruby::from(v)
}

fn strs(v: &[&str]) -> Ruby {
    Ruby::Array(v.iter().map(|x| s(x)).collect())
}

fn str_hash(entries: Vec<(&str, Ruby)>) -> Ruby {
    Ruby::Hash(
        entries
            .into_iter()
            .map(|(k, v)| (Key::Str(k.into()), v))
            .collect(),
    )
}

#[test]
fn workflow_object() {
    let v = Ruby::symbols([
        ("wid", s("D-b9401264-4383-4401-a548-1f881ea14acb")),
        ("user", s("frontend")),
        ("done", false.into()),
        ("error", false.into()),
        ("start_time", 1389347228i64.into()),
        (
            "environment",
            Ruby::symbols([
                ("id", 3i64.into()),
                ("user", s("root")),
                ("name", s("debian-base")),
                ("version", 1i64.into()),
            ]),
        ),
        ("logs", true.into()),
        ("debugs", false.into()),
        (
            "nodes",
            Ruby::symbols([
                ("ok", strs(&[])),
                ("ko", strs(&[])),
                (
                    "processing",
                    strs(&["node-1.testbed.lan", "node-2.testbed.lan"]),
                ),
            ]),
        ),
        ("time", 30.92.into()),
    ]);
    assert_eq!(
        to_yaml(&v),
        "---\n:wid: D-b9401264-4383-4401-a548-1f881ea14acb\n:user: frontend\n:done: false\n:error: false\n:start_time: 1389347228\n:environment:\n  :id: 3\n  :user: root\n  :name: debian-base\n  :version: 1\n:logs: true\n:debugs: false\n:nodes:\n  :ok: []\n  :ko: []\n  :processing:\n  - node-1.testbed.lan\n  - node-2.testbed.lan\n:time: 30.92\n"
    );
}

#[test]
fn lists_nesting_nil_and_empty_collections() {
    let wf = Ruby::symbols([
        ("wid", s("x")),
        ("user", s("u")),
        ("done", true.into()),
        ("error", false.into()),
        ("start_time", 1i64.into()),
        ("nodes", strs(&["a", "b"])),
        ("time", 3.0.into()),
    ]);
    let nested = Ruby::Array(vec![
        Ruby::Array(vec![1i64.into(), Ruby::Array(vec![2i64.into()])]),
        Ruby::Nil,
        Ruby::Array(vec![]),
        Ruby::hash(),
    ]);
    assert_eq!(
        to_yaml(&Ruby::Array(vec![wf, nested])),
        "---\n- :wid: x\n  :user: u\n  :done: true\n  :error: false\n  :start_time: 1\n  :nodes:\n  - a\n  - b\n  :time: 3.0\n- - - 1\n    - - 2\n  -\n  - []\n  - {}\n"
    );
    assert_eq!(to_yaml(&Ruby::hash()), "--- {}\n");
    assert_eq!(to_yaml(&Ruby::Array(vec![])), "--- []\n");
}

#[test]
fn node_states_with_nil_folded_and_multiline_strings() {
    let v = str_hash(vec![
        (
            "node-1",
            Ruby::symbols([
                ("macro", s("SetDeploymentEnvUntrusted")),
                ("micro", s("wait_reboot")),
                ("state", s("reboot_in_progress")),
            ]),
        ),
        (
            "n",
            Ruby::symbols([
                ("macro", Ruby::Nil),
                ("micro", Ruby::Nil),
                ("state", s("ok")),
                ("out", s("on\n")),
            ]),
        ),
        (
            "node-2",
            Ruby::symbols([
                ("macro", s("SetDeploymentEnvUntrusted")),
                ("micro", s("reboot")),
                ("state", s("ko")),
                (
                    "error",
                    s(
                        "SetDeploymentEnvUntrusted-reboot: very_hard_reboot command is not provided, and this error message is long enough to be folded twice by libyaml at eighty columns",
                    ),
                ),
            ]),
        ),
    ]);
    assert_eq!(
        to_yaml(&v),
        "---\nnode-1:\n  :macro: SetDeploymentEnvUntrusted\n  :micro: wait_reboot\n  :state: reboot_in_progress\n\"n\":\n  :macro:\n  :micro:\n  :state: ok\n  :out: 'on\n\n    '\nnode-2:\n  :macro: SetDeploymentEnvUntrusted\n  :micro: reboot\n  :state: ko\n  :error: 'SetDeploymentEnvUntrusted-reboot: very_hard_reboot command is not provided,\n    and this error message is long enough to be folded twice by libyaml at eighty\n    columns'\n"
    );
}

#[test]
fn status_tree() {
    let leaf = Ruby::symbols([
        (
            "nodes",
            Ruby::symbols([
                ("OK", strs(&[])),
                ("KO", strs(&["x"])),
                ("**", strs(&["node-1", "node-2"])),
            ]),
        ),
        ("time", 63i64.into()),
    ]);
    let macro_step = Ruby::symbols([("wait_reboot", leaf), ("OK", strs(&["z"]))]);
    let v = str_hash(vec![(
        "griffon",
        Ruby::symbols([("SetDeploymentEnvUntrusted", macro_step)]),
    )]);
    assert_eq!(
        to_yaml(&v),
        "---\ngriffon:\n  :SetDeploymentEnvUntrusted:\n    :wait_reboot:\n      :nodes:\n        :OK: []\n        :KO:\n        - x\n        :**:\n        - node-1\n        - node-2\n      :time: 63\n    :OK:\n    - z\n"
    );
}

#[test]
fn string_styles() {
    let cases: [(&str, &str); 35] = [
        ("a", "12"),
        ("b", "-5"),
        ("c", "true"),
        ("d", "on"),
        ("e", "a: b"),
        ("f", "it's"),
        ("g", "#x"),
        ("h", "~"),
        ("i", ""),
        ("j", "1.5"),
        ("k", ":sym"),
        ("l", "/path/x"),
        ("m", "tcp://h:25300"),
        ("n", "a\nb\n"),
        ("o", " x\ny"),
        ("p", "tab\there"),
        ("q", "é ü"),
        ("r", "😀"),
        ("s", "x  "),
        ("t", "x\n\n"),
        ("u", "0.1.2"),
        ("v", "1_000"),
        ("w", "12:30"),
        ("x", "2020-01-02"),
        ("y", "y"),
        ("z", "NULL"),
        ("aa", "09"),
        ("ab", "a\"b"),
        ("ac", "-x \"q\""),
        (
            "ad",
            "plain words that are long enough to be folded by the libyaml emitter at the eightieth column",
        ),
        ("ae", "x\n\n\n"),
        ("af", ".inf"),
        ("ag", "0x1F"),
        ("ah", "D-1"),
        ("ai", "off\n"),
    ];
    let v = Ruby::symbols(cases.iter().map(|(k, v)| (*k, s(v))));
    assert_eq!(
        to_yaml(&v),
        "---\n:a: '12'\n:b: \"-5\"\n:c: 'true'\n:d: 'on'\n:e: 'a: b'\n:f: it's\n:g: \"#x\"\n:h: \"~\"\n:i: ''\n:j: '1.5'\n:k: \":sym\"\n:l: \"/path/x\"\n:m: tcp://h:25300\n:n: |\n  a\n  b\n:o: |2-\n   x\n  y\n:p: \"tab\\there\"\n:q: é ü\n:r: \"\\U0001F600\"\n:s: 'x  '\n:t: \"x\\n\\n\"\n:u: 0.1.2\n:v: '1_000'\n:w: '12:30'\n:x: '2020-01-02'\n:y: \"y\"\n:z: 'NULL'\n:aa: '09'\n:ab: a\"b\n:ac: -x \"q\"\n:ad: plain words that are long enough to be folded by the libyaml emitter at the eightieth\n  column\n:ae: |+\n  x\n\n\n:af: \".inf\"\n:ag: '0x1F'\n:ah: D-1\n:ai: 'off\n\n  '\n...\n"
    );
}

#[test]
fn string_keys_and_floats() {
    let v = str_hash(vec![
        ("a b", 1i64.into()),
        ("key: x", 2i64.into()),
        ("- x", 3i64.into()),
        ("12", 4i64.into()),
        ("", 5i64.into()),
        ("n", 6i64.into()),
    ]);
    assert_eq!(
        to_yaml(&v),
        "---\na b: 1\n'key: x': 2\n\"- x\": 3\n'12': 4\n'': 5\n\"n\": 6\n"
    );
    let floats = [
        1e20,
        1.5e-7,
        0.0001,
        1e15,
        1e16,
        123456789012345.6,
        -0.0,
        2.5,
        0.1,
        100.0,
        1.0 / 3.0,
    ];
    assert_eq!(
        to_yaml(&Ruby::Array(
            floats.iter().map(|f| Ruby::Float(*f)).collect()
        )),
        "---\n- 1.0e+20\n- 1.5e-07\n- 0.0001\n- 1.0e+15\n- 1.0e+16\n- 123456789012345.6\n- -0.0\n- 2.5\n- 0.1\n- 100.0\n- 0.3333333333333333\n"
    );
    let keep_end = Ruby::symbols([("a", s("a\nb\n\n"))]);
    assert_eq!(to_yaml(&keep_end), "---\n:a: |+\n  a\n  b\n\n...\n");
}
