//! The `environments` table: Kadeploy's column encodings (`file|kind|md5[|script]`, hex `fdisk_type`),
//! lookups with Kadeploy's visibility rules and version selection (spec §3.9, §8.2).

use super::{Result, Store, api};
use kadeploy::envdesc::{
    ArchiveDesc, BootDesc, EnvDesc, ImageDesc, OptionsDesc, PartitionDesc, Visibility,
};
use kadeploy::error::ApiError;
use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Value, json};

/// A recorded environment.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvRow {
    /// Database id.
    pub id: i64,
    /// Owner.
    pub user: String,
    /// The description.
    pub desc: EnvDesc,
    /// Checksums of its files (the third field of `tarball`, `preinstall` and each `postinstall` entry).
    pub checksums: Checksums,
}

/// Checksums of an environment's image and archives (empty: not known).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checksums {
    /// Of the image.
    pub image: String,
    /// Of the pre-install archive (empty without one).
    pub preinstall: String,
    /// Of the post-install archives, in the environment's order.
    pub postinstalls: Vec<String>,
}

impl EnvRow {
    /// The JSON of `GET /environments` items: the description plus `user`.
    pub fn to_value(&self) -> Value {
        let mut v = self.desc.to_value();
        if let Some(m) = v.as_object_mut() {
            m.insert("user".into(), Value::String(self.user.clone()));
        }
        v
    }
}

/// What `GET /environments` asks for.
#[derive(Clone, Debug, Default)]
pub struct EnvFilter {
    /// The caller.
    pub caller: String,
    /// The caller is almighty.
    pub almighty: bool,
    /// `username`.
    pub username: Option<String>,
    /// `name` (SQL `LIKE`).
    pub name: Option<String>,
    /// `version`.
    pub version: Option<u32>,
    /// `last`.
    pub last: bool,
}

const COLUMNS: &str = "id, name, version, description, author, tarball, preinstall, postinstall, hypervisor, \
    hypervisor_params, initrd, kernel, kernel_params, fdisk_type, filesystem, user, environment_kind, visibility, \
    demolishing_env, multipart, options";

fn kind_of(short: &str) -> (String, Value) {
    fn comp(s: &str) -> &str {
        match s {
            "gz" => "gzip",
            "bz2" => "bzip2",
            "xz" => "xz",
            other => other,
        }
    }
    if let Some(n) = short.strip_prefix("fsa") {
        ("fsa".into(), Value::from(n.parse::<u32>().unwrap_or(0)))
    } else if let Some(c) = short.strip_prefix("dd") {
        ("dd".into(), Value::String(comp(c).into()))
    } else {
        (
            "tar".into(),
            Value::String(comp(short.strip_prefix('t').unwrap_or(short)).into()),
        )
    }
}

/// An archive column entry `file|shortkind|md5|script`, and its checksum.
fn archive_of(field: &str) -> Option<(ArchiveDesc, String)> {
    let parts: Vec<&str> = field.split('|').collect();
    if parts.len() < 2 || parts[0].is_empty() {
        return None;
    }
    let (_, comp) = kind_of(parts[1]);
    let archive = ArchiveDesc {
        archive: parts[0].into(),
        compression: comp.as_str().unwrap_or("gzip").into(),
        script: parts.get(3).copied().unwrap_or("none").into(),
    };
    Some((archive, parts.get(2).copied().unwrap_or("").into()))
}

fn encode_archive(a: &ArchiveDesc, md5: &str) -> String {
    let short = match a.compression.as_str() {
        "bzip2" => "tbz2",
        "xz" => "txz",
        _ => "tgz",
    };
    format!("{}|{short}|{md5}|{}", a.archive, a.script)
}

/// The `preinstall` and `postinstall` columns of `d` with checksums `sums`.
fn archive_columns(d: &EnvDesc, sums: &Checksums) -> (String, String) {
    let pre = (d.preinstall.as_ref())
        .map(|a| encode_archive(a, &sums.preinstall))
        .unwrap_or_default();
    let post = (d.postinstalls.iter().enumerate())
        .map(|(i, a)| encode_archive(a, sums.postinstalls.get(i).map_or("", String::as_str)))
        .collect::<Vec<_>>()
        .join(",");
    (pre, post)
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<EnvRow> {
    let tarball: String = r.get(5)?;
    let mut t = tarball.split('|');
    let file = t.next().unwrap_or("").to_string();
    let (kind, compression) = kind_of(t.next().unwrap_or("tgz"));
    let md5 = t.next().unwrap_or("").to_string();
    let options: Option<String> = r.get(20)?;
    let options: Value = options
        .and_then(|o| serde_json::from_str(&o).ok())
        .unwrap_or(Value::Null);
    let partitions: Vec<PartitionDesc> = options["partitions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(PartitionDesc {
                        id: p["id"].as_u64()? as u32,
                        device: p["device"].as_str()?.into(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let postinstall: String = r.get(7)?;
    let (postinstalls, post_sums): (Vec<ArchiveDesc>, Vec<String>) =
        postinstall.split(',').filter_map(archive_of).unzip();
    let (preinstall, pre_sum) = archive_of(&r.get::<_, String>(6)?).unzip();
    let fdisk: Option<String> = r.get(13)?;
    let desc = EnvDesc {
        name: r.get(1)?,
        version: r.get(2)?,
        description: r.get(3)?,
        author: r.get(4)?,
        visibility: Visibility::parse(&r.get::<_, String>(17)?).unwrap_or(Visibility::Private),
        destructive: r.get::<_, i64>(18)? != 0,
        os: r.get(16)?,
        image: ImageDesc {
            file,
            kind,
            compression,
        },
        preinstall,
        postinstalls,
        boot: BootDesc {
            kernel: r.get(11)?,
            initrd: r.get(10)?,
            kernel_params: r.get(12)?,
            hypervisor: r.get(8)?,
            hypervisor_params: r.get(9)?,
            block_device: options["block_device"].as_str().unwrap_or("").into(),
            partition: options["deploy_part"].as_u64().map(|p| p as u32),
        },
        filesystem: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
        partition_type: fdisk
            .and_then(|f| u32::from_str_radix(&f, 16).ok())
            .unwrap_or(0),
        multipart: r.get::<_, i64>(19)? != 0,
        options: (!partitions.is_empty()).then_some(OptionsDesc { partitions }),
    };
    Ok(EnvRow {
        id: r.get(0)?,
        user: r.get(15)?,
        desc,
        checksums: Checksums {
            image: md5,
            preinstall: pre_sum.unwrap_or_default(),
            postinstalls: post_sums,
        },
    })
}

pub(super) fn options_json(d: &EnvDesc) -> Option<String> {
    let parts = d
        .options
        .as_ref()
        .map(|o| o.partitions.clone())
        .unwrap_or_default();
    if parts.is_empty() && d.boot.block_device.is_empty() && d.boot.partition.is_none() {
        return None;
    }
    let v = json!({"partitions": parts, "block_device": d.boot.block_device, "deploy_part": d.boot.partition});
    Some(v.to_string())
}

impl Store {
    /// Records `desc` for `owner` with the checksums of its files; error 10 when (owner, name, version)
    /// exists.
    pub fn env_add(&self, owner: &str, desc: &EnvDesc, sums: &Checksums) -> Result<EnvRow> {
        let (pre, post) = archive_columns(desc, sums);
        self.transaction(|tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT id FROM environments WHERE user = ?1 AND name = ?2 AND version = ?3",
                    params![owner, desc.name, desc.version],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Err(api(
                    ApiError::ExistingElement,
                    format!(
                        "An environment with the name {} and the version {} has already been recorded for the user {owner}",
                        desc.name, desc.version
                    ),
                ));
            }
            tx.execute(
                "INSERT INTO environments (name, version, description, author, tarball, preinstall, postinstall,
                 hypervisor, hypervisor_params, initrd, kernel, kernel_params, fdisk_type, filesystem, user,
                 environment_kind, visibility, demolishing_env, multipart, options)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
                params![
                    desc.name,
                    desc.version,
                    desc.description,
                    desc.author,
                    format!("{}|{}|{}", desc.image.file, desc.short_kind(), sums.image),
                    pre,
                    post,
                    desc.boot.hypervisor,
                    desc.boot.hypervisor_params,
                    desc.boot.initrd,
                    desc.boot.kernel,
                    desc.boot.kernel_params,
                    format!("{:x}", desc.partition_type),
                    desc.filesystem,
                    owner,
                    desc.os,
                    desc.visibility.as_str(),
                    desc.destructive as i64,
                    desc.multipart as i64,
                    options_json(desc),
                ],
            )?;
            let id = tx.last_insert_rowid();
            Ok(EnvRow { id, user: owner.into(), desc: desc.clone(), checksums: sums.clone() })
        })
    }

    /// The environment with database id `id`.
    pub fn env_by_id(&self, id: i64) -> Result<Option<EnvRow>> {
        let sql = format!("SELECT {COLUMNS} FROM environments WHERE id = ?1");
        self.read(|conn| Ok(conn.query_row(&sql, [id], from_row).optional()?))
    }

    /// Every version of `owner`'s environment `name` (exact), newest first.
    pub fn env_versions(&self, owner: &str, name: &str) -> Result<Vec<EnvRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM environments WHERE user = ?1 AND name = ?2 ORDER BY version DESC"
        );
        self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(params![owner, name], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// `GET /environments` with Kadeploy's visibility rules, version selection and ordering.
    pub fn env_list(&self, f: &EnvFilter) -> Result<Vec<EnvRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM environments WHERE (?1 IS NULL OR name LIKE ?1) AND (?2 IS NULL OR version = ?2)
             AND (?3 IS NULL OR user = ?3)
             ORDER BY CASE visibility WHEN 'public' THEN 0 WHEN 'private' THEN 1 ELSE 2 END, name, user, version DESC"
        );
        let rows = self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(params![f.name, f.version, f.username], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut out: Vec<EnvRow> = Vec::new();
        for row in rows {
            let visible = match &f.username {
                None => {
                    f.almighty || row.user == f.caller || row.desc.visibility == Visibility::Public
                }
                Some(u) if *u == f.caller || f.almighty => true,
                Some(_) => row.desc.visibility != Visibility::Private,
            };
            if !visible {
                continue;
            }
            // `last`: the newest visible version, which may come in a later visibility group.
            if f.last
                && f.version.is_none()
                && let Some(i) = out
                    .iter()
                    .position(|o| o.user == row.user && o.desc.name == row.desc.name)
            {
                if out[i].desc.version >= row.desc.version {
                    continue;
                }
                out.remove(i);
            }
            out.push(row);
        }
        Ok(out)
    }

    /// Replaces the stored description (and checksums) of environment `id`.
    pub fn env_update(&self, id: i64, desc: &EnvDesc, sums: &Checksums) -> Result<()> {
        let (pre, post) = archive_columns(desc, sums);
        self.transaction(|tx| {
            let n = tx.execute(
                "UPDATE environments SET visibility = ?2, demolishing_env = ?3, tarball = ?4, preinstall = ?5,
                 postinstall = ?6 WHERE id = ?1",
                params![
                    id,
                    desc.visibility.as_str(),
                    desc.destructive as i64,
                    format!("{}|{}|{}", desc.image.file, desc.short_kind(), sums.image),
                    pre,
                    post,
                ],
            )?;
            if n == 0 {
                return Err(api(ApiError::NothingModified, "the environment does not exist"));
            }
            Ok(())
        })
    }

    /// Deletes the environments with these ids, all or none.
    pub fn env_delete(&self, ids: &[i64]) -> Result<()> {
        self.transaction(|tx| {
            for id in ids {
                if tx.execute("DELETE FROM environments WHERE id = ?1", [id])? == 0 {
                    return Err(api(
                        ApiError::NothingModified,
                        format!("environment {id} vanished"),
                    ));
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(name: &str, version: u32, vis: &str) -> EnvDesc {
        let v = json!({"name": name, "version": version, "visibility": vis, "os": "linux", "filesystem": "ext4",
            "image": {"file": "server:///e.tgz", "kind": "tar", "compression": "xz"}, "boot": {"kernel": "/vmlinuz"},
            "partition_type": 131, "postinstalls": [{"archive": "/p.tgz", "compression": "gzip", "script": "s.sh a"}]});
        EnvDesc::from_value(&v).unwrap().0
    }

    #[test]
    fn add_round_trips_and_refuses_duplicates() {
        let s = Store::in_memory().unwrap();
        let d = desc("deb", 1, "shared");
        let sums = Checksums {
            image: "abc".into(),
            preinstall: String::new(),
            postinstalls: vec!["def".into()],
        };
        let row = s.env_add("alice", &d, &sums).unwrap();
        let back = s.env_by_id(row.id).unwrap().unwrap();
        assert_eq!(back.desc, d);
        assert_eq!(back.checksums, sums);
        let err = s.env_add("alice", &d, &sums).unwrap_err();
        assert!(matches!(err, super::super::StoreError::Api(ref e) if e.kind.code() == 10));
    }

    #[test]
    fn visibility_and_last() {
        let s = Store::in_memory().unwrap();
        s.env_add("alice", &desc("a", 1, "private"), &Checksums::default())
            .unwrap();
        s.env_add("alice", &desc("a", 2, "private"), &Checksums::default())
            .unwrap();
        s.env_add("root", &desc("p", 1, "public"), &Checksums::default())
            .unwrap();
        s.env_add("bob", &desc("b", 1, "shared"), &Checksums::default())
            .unwrap();
        let f = |caller: &str, username: Option<&str>, last: bool| EnvFilter {
            caller: caller.into(),
            almighty: false,
            username: username.map(Into::into),
            last,
            ..Default::default()
        };
        let names = |rows: Vec<EnvRow>| {
            rows.iter()
                .map(|r| format!("{}:{}", r.desc.name, r.desc.version))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(s.env_list(&f("alice", None, true)).unwrap()),
            ["p:1", "a:2"]
        );
        assert_eq!(
            names(s.env_list(&f("bob", None, false)).unwrap()),
            ["p:1", "b:1"]
        );
        assert_eq!(
            names(s.env_list(&f("bob", Some("alice"), false)).unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(
            names(s.env_list(&f("alice", Some("bob"), false)).unwrap()),
            ["b:1"]
        );
        // Versions of one environment with different visibilities: `last` is the newest visible one (before,
        // the first listed visibility group won: alice saw a:3 instead of her private a:4).
        s.env_add("alice", &desc("a", 3, "public"), &Checksums::default())
            .unwrap();
        s.env_add("alice", &desc("a", 4, "private"), &Checksums::default())
            .unwrap();
        assert_eq!(
            names(s.env_list(&f("alice", None, true)).unwrap()),
            ["p:1", "a:4"]
        );
        assert_eq!(
            names(s.env_list(&f("bob", None, true)).unwrap()),
            ["a:3", "p:1", "b:1"]
        );
    }
}
