//! Generated Kadeploy 3.3 rows (the INSERTs loaded into MariaDB) and what our clients must show once they
//! are imported, derived from the same values: environments of every image kind, compression, visibility,
//! OS and several versions; rights with `*` nodes and partitions; node states; statistics with failures,
//! retries and every operation; plus rows that cannot be imported and why.

use serde_json::{Value, json};
use std::collections::BTreeMap;

#[path = "rows/access.rs"]
mod access;

/// Kadeploy 3.3's short image kinds.
const KINDS: [&str; 9] = [
    "tgz", "tbz2", "txz", "ddgz", "ddbz2", "ddxz", "fsa0", "fsa5", "fsa9",
];
/// Environment owners.
const USERS: [&str; 3] = ["root", "alice", "bob"];
/// Visibilities.
const VISIBILITIES: [&str; 3] = ["public", "shared", "private"];
/// The sample configuration's domain.
const DOMAIN: &str = "sim.kadeploy";

/// An environment that must be imported.
pub struct Env {
    /// Kadeploy 3.3 id.
    pub id: u32,
    /// Owner.
    pub user: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: u32,
    /// Visibility.
    pub visibility: String,
    /// Description (first 35 characters shown by `kaenv3 -l`).
    pub description: String,
    /// The unused `allowed_users` column.
    pub allowed_users: String,
    /// What `kaenv3 -p` prints, as JSON.
    pub expected: Value,
}

/// Counts the import must report for one table: read, inserted, unchanged, skipped, altered.
pub type Expected = [u64; 5];

/// Everything generated.
#[derive(Default)]
pub struct Generated {
    /// The INSERT statements.
    pub sql: String,
    /// Environments that must be imported.
    pub envs: Vec<Env>,
    /// Rows that must be reported as skipped: (table, identity fragment, reason fragment).
    pub skipped: Vec<(&'static str, String, &'static str)>,
    /// Rows that must be reported as altered: (table, identity fragment, reason fragment).
    pub altered: Vec<(&'static str, String, &'static str)>,
    /// `karights3 -l` lines: (user, node, partitions).
    pub rights: Vec<(String, String, Vec<String>)>,
    /// `kanodes3 -s` for each node: state, user, environment (name, version, user) or nulls.
    pub nodes: BTreeMap<String, Value>,
    /// `kastat3` CSV lines (all fields), one per imported log row.
    pub log_lines: Vec<String>,
    /// Imported log rows, as (wid, hostname, success, retries).
    pub log_rows: Vec<(String, String, bool, [i64; 3])>,
    /// Counts per table: environments, rights, nodes, log.
    pub counts: BTreeMap<&'static str, Expected>,
}

/// A SQL string literal (or NULL).
fn q(s: Option<&str>) -> String {
    match s {
        None => "NULL".into(),
        Some(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
    }
}

fn host(n: u32) -> String {
    format!("node-{n}.{DOMAIN}")
}

/// The compression of a short archive kind, and its file extension.
fn archive_kind(j: usize) -> (&'static str, &'static str) {
    [("tgz", "gzip"), ("tbz2", "bzip2"), ("txz", "xz")][j % 3]
}

/// One environment row: every column, as a 3.3 server writes them.
#[derive(Clone, Default)]
struct EnvRow {
    id: u32,
    name: String,
    version: u32,
    description: Option<String>,
    author: String,
    tarball: String,
    preinstall: String,
    postinstall: String,
    hypervisor: String,
    hypervisor_params: String,
    initrd: String,
    kernel: String,
    kernel_params: String,
    fdisk_type: Option<String>,
    filesystem: Option<String>,
    user: String,
    allowed_users: String,
    os: String,
    visibility: String,
    destructive: bool,
    multipart: bool,
    options: Option<String>,
}

impl EnvRow {
    fn insert(&self) -> String {
        format!(
            "INSERT INTO environments (id, name, version, description, author, tarball, preinstall, postinstall, \
             hypervisor, hypervisor_params, initrd, kernel, kernel_params, fdisk_type, filesystem, user, \
             allowed_users, environment_kind, visibility, demolishing_env, multipart, options) VALUES \
             ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {});\n",
            self.id,
            q(Some(&self.name)),
            self.version,
            q(self.description.as_deref()),
            q(Some(&self.author)),
            q(Some(&self.tarball)),
            q(Some(&self.preinstall)),
            q(Some(&self.postinstall)),
            q(Some(&self.hypervisor)),
            q(Some(&self.hypervisor_params)),
            q(Some(&self.initrd)),
            q(Some(&self.kernel)),
            q(Some(&self.kernel_params)),
            q(self.fdisk_type.as_deref()),
            q(self.filesystem.as_deref()),
            q(Some(&self.user)),
            q(Some(&self.allowed_users)),
            q(Some(&self.os)),
            q(Some(&self.visibility)),
            u8::from(self.destructive),
            u8::from(self.multipart),
            q(self.options.as_deref()),
        )
    }
}

/// Kadeploy 3.3's `to_hash` of an environment (what `kaenv3 -p` prints), from the spec's rules.
fn to_hash(
    r: &EnvRow,
    partitions: &[(u32, &str)],
    block_device: &str,
    deploy_part: Option<u32>,
) -> Value {
    let mut v = json!({
        "name": r.name, "version": r.version, "visibility": r.visibility, "destructive": r.destructive,
        "os": r.os, "multipart": r.multipart,
        "partition_type": r.fdisk_type.as_deref().map(|h| u32::from_str_radix(h, 16).unwrap_or(0)).unwrap_or(0),
    });
    let desc = r.description.clone().unwrap_or_default();
    if !desc.is_empty() {
        v["description"] = json!(desc);
    }
    if !r.author.is_empty() {
        v["author"] = json!(r.author);
    }
    let mut t = r.tarball.split('|');
    let (file, short) = (t.next().unwrap_or(""), t.next().unwrap_or(""));
    let (kind, compression) = match short {
        "tgz" => ("tar", json!("gzip")),
        "tbz2" => ("tar", json!("bzip2")),
        "txz" => ("tar", json!("xz")),
        "ddgz" => ("dd", json!("gzip")),
        "ddbz2" => ("dd", json!("bzip2")),
        "ddxz" => ("dd", json!("xz")),
        fsa => ("fsa", json!(fsa[3..].parse::<u32>().unwrap_or(0))),
    };
    v["image"] = json!({"file": file, "kind": kind, "compression": compression});
    let archive = |s: &str| {
        let p: Vec<&str> = s.split('|').collect();
        let comp = match p[1] {
            "tbz2" => "bzip2",
            "txz" => "xz",
            _ => "gzip",
        };
        json!({"archive": p[0], "compression": comp, "script": p[3]})
    };
    if !r.preinstall.is_empty() {
        v["preinstall"] = archive(&r.preinstall);
    }
    if !r.postinstall.is_empty() {
        v["postinstalls"] = r.postinstall.split(',').map(archive).collect();
    }
    let mut boot = serde_json::Map::new();
    for (k, val) in [
        ("kernel", &r.kernel),
        ("initrd", &r.initrd),
        ("kernel_params", &r.kernel_params),
        ("hypervisor", &r.hypervisor),
        ("hypervisor_params", &r.hypervisor_params),
    ] {
        if !val.is_empty() {
            boot.insert(k.into(), json!(val));
        }
    }
    if !block_device.is_empty() {
        boot.insert("block_device".into(), json!(block_device));
    }
    if let Some(p) = deploy_part {
        boot.insert("partition".into(), json!(p));
    }
    if !boot.is_empty() {
        v["boot"] = Value::Object(boot);
    }
    if let Some(fs) = r.filesystem.as_deref().filter(|f| !f.is_empty()) {
        v["filesystem"] = json!(fs);
    }
    if !partitions.is_empty() {
        let parts: Vec<Value> = partitions
            .iter()
            .map(|(id, dev)| json!({"id": id, "device": dev}))
            .collect();
        v["options"] = json!({ "partitions": parts });
    }
    v
}

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

impl Generated {
    /// Generates the rows.
    pub fn new() -> Generated {
        let mut g = Generated::default();
        g.environments();
        g.rights();
        g.nodes();
        g.log();
        g
    }

    fn environments(&mut self) {
        let mut id = 100;
        let mut rows = Vec::new();
        for (k, kind) in KINDS.iter().enumerate() {
            for (u, user) in USERS.iter().enumerate() {
                let versions = if k % 3 == 0 { 3 } else { 1 };
                for version in 1..=versions {
                    id += 3;
                    let i = k * 3 + u + version as usize;
                    let tar = kind.starts_with('t');
                    let fsa = kind.starts_with("fsa");
                    let os = match *kind {
                        "txz" => "xen",
                        "ddgz" | "ddxz" => "other",
                        _ => "linux",
                    };
                    let name = if *kind == "fsa0" {
                        "env fsa0 spaced".to_string()
                    } else {
                        format!("env-{kind}")
                    };
                    let file = if i % 3 == 1 {
                        format!("http://images.example.org/{user}/{kind}-v{version}")
                    } else {
                        format!("server:///grid5000/images/{user}-{kind}-v{version}")
                    };
                    let md5 = if i.is_multiple_of(5) {
                        String::new()
                    } else {
                        format!("{:032x}", u64::from(id) * 7919)
                    };
                    let posts: Vec<String> = (0..i % 3)
                        .map(|j| {
                            let (short, _) = archive_kind(j + i);
                            let script = if j == 1 {
                                "none".to_string()
                            } else {
                                format!("traitement.sh {j}")
                            };
                            format!(
                                "/grid5000/post/{kind}-{j}.{short}|{short}|p{j}md5{id}|{script}"
                            )
                        })
                        .collect();
                    let mut r = EnvRow {
                        id,
                        name,
                        version,
                        description: match i % 4 {
                            0 => None,
                            1 => Some(String::new()),
                            2 => Some("Débian 12 — image «base», whose description is longer than 35 characters".into()),
                            _ => Some(format!("https://www.grid5000.fr/index.php/{kind}-{version}")),
                        },
                        author: if i.is_multiple_of(2) { "John Smith".into() } else { String::new() },
                        tarball: format!("{file}|{kind}|{md5}"),
                        preinstall: if i.is_multiple_of(4) {
                            format!("/grid5000/pre/{kind}.tgz|tgz|pre{id}|launch.sh -v")
                        } else {
                            String::new()
                        },
                        postinstall: posts.join(","),
                        kernel: if tar || fsa || i.is_multiple_of(2) {
                            format!("/boot/vmlinuz-6.1.0-{k}-amd64")
                        } else {
                            String::new()
                        },
                        initrd: if i % 3 != 2 { format!("/boot/initrd.img-6.1.0-{k}-amd64") } else { String::new() },
                        kernel_params: if i.is_multiple_of(3) { "console=tty0 console=ttyS1,38400n8".into() } else { String::new() },
                        fdisk_type: match i % 5 {
                            4 if !tar => None,
                            n => Some(["83", "7", "a5", "0", "fd"][n].into()),
                        },
                        filesystem: if tar || fsa {
                            Some(["ext4", "ext3", "xfs"][i % 3].into())
                        } else if i.is_multiple_of(2) {
                            None
                        } else {
                            Some(String::new())
                        },
                        user: user.to_string(),
                        allowed_users: if i.is_multiple_of(2) { String::new() } else { "alice,bob".into() },
                        os: os.into(),
                        visibility: VISIBILITIES[(k + u + version as usize) % 3].into(),
                        destructive: i % 2 == 1,
                        ..Default::default()
                    };
                    if os == "xen" {
                        r.hypervisor = "/boot/xen-4.17-amd64.gz".into();
                        r.hypervisor_params = "dom0_mem=1000000".into();
                    }
                    let mut partitions: Vec<(u32, &str)> = Vec::new();
                    let (mut block_device, mut deploy_part) = ("", None);
                    match *kind {
                        "fsa5" => {
                            // Psych (Ruby >= 1.9) dump of a multipart layout.
                            r.multipart = true;
                            r.options = Some(
                                "---\npartitions:\n- id: 0\n  device: /dev/sda1\n- id: 1\n  device: /dev/sda2\n\
                                 - id: 2\n  device: /dev/sda3\nblock_device: /dev/sda\ndeploy_part: '2'\n"
                                    .into(),
                            );
                            partitions = vec![(0, "/dev/sda1"), (1, "/dev/sda2"), (2, "/dev/sda3")];
                            block_device = "/dev/sda";
                            deploy_part = Some(2);
                        }
                        "fsa9" => {
                            // Syck (Ruby 1.8) dump: a partition list without multipart.
                            r.options =
                                Some("--- \npartitions: \n- id: 0\n  device: /dev/sda3\n".into());
                            partitions = vec![(0, "/dev/sda3")];
                        }
                        "fsa0" => r.options = if u == 1 { Some(String::new()) } else { None },
                        _ => {}
                    }
                    let expected = to_hash(&r, &partitions, block_device, deploy_part);
                    self.sql.push_str(&r.insert());
                    rows.push(r.clone());
                    self.envs.push(Env {
                        id,
                        user: r.user.clone(),
                        name: r.name.clone(),
                        version,
                        visibility: r.visibility.clone(),
                        description: r.description.clone().unwrap_or_default(),
                        allowed_users: r.allowed_users.clone(),
                        expected,
                    });
                }
            }
        }
        // An environment imported without a part: an options key no description has.
        let mut odd = rows[0].clone();
        odd.id = 900;
        odd.name = "env-extra-option".into();
        odd.options = Some("---\nfoo: bar\n".into());
        self.sql.push_str(&odd.insert());
        self.envs.push(Env {
            id: 900,
            user: odd.user.clone(),
            name: odd.name.clone(),
            version: odd.version,
            visibility: odd.visibility.clone(),
            description: odd.description.clone().unwrap_or_default(),
            allowed_users: odd.allowed_users.clone(),
            expected: to_hash(&odd, &[], "", None),
        });
        self.altered.push((
            "environments",
            "id=900 ".into(),
            "options key \"foo\" dropped",
        ));
        // Rows that cannot be imported.
        let base = rows[1].clone();
        type Change = fn(&mut EnvRow);
        let bad: [(u32, Change, &'static str); 6] = [
            (
                901,
                |r| r.tarball = "/grid5000/x.tar.zst|tzst|".into(),
                "unknown image kind \"tzst\"",
            ),
            (
                902,
                |r| r.visibility = "secret".into(),
                "unknown visibility \"secret\"",
            ),
            (903, |r| r.kernel.clear(), "The field 'kernel' is mandatory"),
            (
                904,
                |r| r.postinstall = "/grid5000/post/a,b.tgz|tgz||none".into(),
                "postinstall \"/grid5000/post/a\"",
            ),
            (
                905,
                |r| r.fdisk_type = Some("zz".into()),
                "fdisk_type \"zz\" is not hexadecimal",
            ),
            (
                906,
                |_| {},
                "same user, name and version as environment id=",
            ),
        ];
        for (id, change, why) in bad {
            let mut r = base.clone();
            r.id = id;
            if id != 906 {
                r.name = format!("bad-{id}");
            }
            change(&mut r);
            self.sql.push_str(&r.insert());
            self.skipped
                .push(("environments", format!("id={id} "), why));
        }
        let read = self.envs.len() as u64 + 6;
        self.counts
            .insert("environments", [read, self.envs.len() as u64, 0, 6, 1]);
    }
}
