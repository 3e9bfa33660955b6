//! One Kadeploy 3.3 `environments` row as a description our store accepts: the `file|kind|md5[|script]`
//! columns split, the short image kind expanded, `fdisk_type` read as hexadecimal, the Ruby YAML `options`
//! parsed, and the result validated as `POST /environments` validates a description (spec §8).

use super::legacy::LegacyEnv;
use crate::store::ImportedEnv;
use kadeploy::envdesc::EnvDesc;
use serde_json::{Map, Value, json};

/// An environment row mapped: the environment to store and notes on what could not be kept.
#[derive(Debug)]
pub struct MappedEnv {
    /// What to store.
    pub env: ImportedEnv,
    /// Parts of the row that were dropped, and why.
    pub notes: Vec<String>,
}

/// `tgz`, `ddbz2`, `fsa3`... as Kadeploy's `image_type_long`: the kind and its compression.
fn image_kind(short: &str) -> Option<(&'static str, Value)> {
    let named = |c: &str| Value::String(c.into());
    Some(match short {
        "tgz" => ("tar", named("gzip")),
        "tbz2" => ("tar", named("bzip2")),
        "txz" => ("tar", named("xz")),
        "ddgz" => ("dd", named("gzip")),
        "ddbz2" => ("dd", named("bzip2")),
        "ddxz" => ("dd", named("xz")),
        _ => {
            let level = short.strip_prefix("fsa")?;
            if level.is_empty() || level.len() > 3 || !level.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            ("fsa", Value::from(level.parse::<u32>().ok()?))
        }
    })
}

/// A pre- or post-install archive column (`file|kind|md5[|script]`) as a description and its checksum.
fn archive(field: &str, what: &str) -> Result<(Value, String), String> {
    let parts: Vec<&str> = field.split('|').collect();
    let (file, kind, md5, script) = match parts.as_slice() {
        [file, kind, md5] => (*file, *kind, *md5, ""),
        [file, kind, md5, script] => (*file, *kind, *md5, *script),
        _ => {
            return Err(format!(
                "{what} {field:?} has {} '|'-separated fields (expected file|kind|md5|script)",
                parts.len()
            ));
        }
    };
    if file.is_empty() {
        return Err(format!("{what} {field:?} has no file"));
    }
    let compression = match kind {
        "tgz" => "gzip",
        "tbz2" => "bzip2",
        "txz" => "xz",
        other => {
            return Err(format!(
                "unknown archive kind {other:?} in {what} {field:?} (expected tgz, tbz2 or txz)"
            ));
        }
    };
    let script = if script.is_empty() { "none" } else { script };
    Ok((
        json!({"archive": file, "compression": compression, "script": script}),
        md5.to_string(),
    ))
}

/// The `options` column, read.
#[derive(Default)]
struct Options {
    /// `partitions`, as found.
    partitions: Option<Value>,
    /// `block_device`.
    block_device: String,
    /// `deploy_part` (a string in Kadeploy's dumps).
    deploy_part: Option<Value>,
    /// Keys that were dropped.
    notes: Vec<String>,
}

/// The `options` column (a Ruby YAML dump of `partitions`, `block_device` and `deploy_part`).
fn options(text: Option<&str>) -> Result<Options, String> {
    let text = text.unwrap_or("").trim();
    if text.is_empty() {
        return Ok(Options::default());
    }
    let v: Value =
        serde_saphyr::from_str(text).map_err(|e| format!("options is not readable YAML ({e})"))?;
    let m = match v {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => return Err("options is not a YAML mapping".into()),
    };
    let mut o = Options::default();
    for (k, v) in m {
        match k.as_str() {
            "partitions" => o.partitions = Some(v),
            "block_device" => match v {
                Value::String(s) => o.block_device = s,
                Value::Null => {}
                other => return Err(format!("options block_device {other} is not a string")),
            },
            "deploy_part" => match &v {
                Value::String(s) if s.is_empty() => {}
                Value::String(_) | Value::Number(_) => o.deploy_part = Some(v),
                Value::Null => {}
                other => return Err(format!("options deploy_part {other} is not a number")),
            },
            other => o.notes.push(format!(
                "options key {other:?} dropped (not part of a description)"
            )),
        }
    }
    Ok(o)
}

/// Maps one row; the error says why the row cannot be imported.
pub fn map_env(row: &LegacyEnv) -> Result<MappedEnv, String> {
    let owner = row.user.clone().unwrap_or_else(|| "nobody".into());
    if owner.trim().is_empty() {
        return Err("the owner (user) is empty".into());
    }
    let tar: Vec<&str> = row.tarball.split('|').collect();
    let (file, short, md5) = match tar.as_slice() {
        [file, short] => (*file, *short, ""),
        [file, short, md5] => (*file, *short, *md5),
        _ => {
            return Err(format!(
                "tarball {:?} has {} '|'-separated fields (expected file|kind|md5)",
                row.tarball,
                tar.len()
            ));
        }
    };
    if file.is_empty() {
        return Err(format!("tarball {:?} has no image file", row.tarball));
    }
    let (kind, compression) = image_kind(short).ok_or_else(|| {
        format!(
            "unknown image kind {short:?} in tarball {:?} (expected tgz, tbz2, txz, ddgz, ddbz2, ddxz or fsaN)",
            row.tarball
        )
    })?;
    if !["public", "shared", "private"].contains(&row.visibility.as_str()) {
        return Err(format!(
            "unknown visibility {:?} (expected public, shared or private)",
            row.visibility
        ));
    }
    let partition_type = match row.fdisk_type.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(hex) => u32::from_str_radix(hex, 16)
            .map_err(|_| format!("fdisk_type {hex:?} is not hexadecimal"))?,
    };
    let (preinstall, preinstall_md5) = match row.preinstall.as_str() {
        "" => (Value::Null, String::new()),
        field => archive(field, "preinstall")?,
    };
    let mut postinstalls = Vec::new();
    let mut postinstall_md5s = Vec::new();
    for field in row.postinstall.split(',').filter(|f| !f.is_empty()) {
        let (desc, md5) = archive(field, "postinstall")?;
        postinstalls.push(desc);
        postinstall_md5s.push(md5);
    }
    let Options {
        partitions,
        block_device,
        deploy_part,
        notes,
    } = options(row.options.as_deref())?;
    let mut boot = json!({
        "kernel": row.kernel, "initrd": row.initrd, "kernel_params": row.kernel_params,
        "hypervisor": row.hypervisor, "hypervisor_params": row.hypervisor_params, "block_device": block_device,
    });
    if let Some(p) = deploy_part {
        boot["partition"] = p;
    }
    let mut desc = json!({
        "name": row.name,
        "version": row.version,
        "description": row.description.clone().unwrap_or_default(),
        "author": row.author,
        "visibility": row.visibility,
        "destructive": row.demolishing_env != 0,
        "os": row.environment_kind,
        "image": {"file": file, "kind": kind, "compression": compression},
        "preinstall": preinstall,
        "postinstalls": postinstalls,
        "boot": boot,
        "filesystem": row.filesystem.clone().unwrap_or_default(),
        "partition_type": partition_type,
        "multipart": row.multipart != 0,
    });
    if let Some(p) = partitions {
        desc["options"] = json!({ "partitions": p });
    }
    let (desc, _) = EnvDesc::from_value(&desc).map_err(|e| e.detail)?;
    Ok(MappedEnv {
        env: ImportedEnv {
            owner,
            desc,
            md5: md5.to_string(),
            preinstall_md5,
            postinstall_md5s,
            allowed_users: row.allowed_users.clone(),
        },
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> LegacyEnv {
        LegacyEnv {
            id: 1,
            name: "debian-min".into(),
            version: 2,
            user: Some("root".into()),
            tarball: "/g5k/debian-multipart.fsa|fsa3|0a1b".into(),
            preinstall: "/pre.tgz|tgz|p1|launch.sh -x".into(),
            postinstall: "/a.tbz2|tbz2|a5|none,/b.txz|txz||go.sh".into(),
            kernel: "/vmlinuz".into(),
            initrd: "/initrd.img".into(),
            fdisk_type: Some("83".into()),
            filesystem: Some("ext3".into()),
            environment_kind: "linux".into(),
            visibility: "shared".into(),
            demolishing_env: 1,
            multipart: 1,
            options: Some(
                "---\npartitions:\n- id: 0\n  device: /dev/sda1\n- id: 1\n  device: /dev/sda2\nblock_device: /dev/sda\ndeploy_part: '2'\n"
                    .into(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn a_multipart_fsa_row_maps_every_field() {
        let m = map_env(&row()).unwrap();
        assert!(m.notes.is_empty());
        let d = &m.env.desc;
        assert_eq!(
            (d.image.kind.as_str(), d.short_kind().as_str()),
            ("fsa", "fsa3")
        );
        assert_eq!(d.partition_type, 0x83);
        assert!(d.destructive && d.multipart);
        assert_eq!(d.boot.block_device, "/dev/sda");
        assert_eq!(d.boot.partition, Some(2));
        assert_eq!(d.options.as_ref().map(|o| o.partitions.len()), Some(2));
        assert_eq!(
            d.preinstall.as_ref().map(|p| p.script.as_str()),
            Some("launch.sh -x")
        );
        assert_eq!(d.postinstalls[1].compression, "xz");
        assert_eq!(m.env.md5, "0a1b");
        assert_eq!(m.env.postinstall_md5s, ["a5", ""]);
    }

    #[test]
    fn syck_style_options_and_unknown_keys() {
        let mut r = row();
        r.options = Some("--- \nblock_device: /dev/sdb\ndeploy_part: 3\npartitions: \n- id: 0\n  device: /dev/sdb1\nfoo: bar\n".into());
        let m = map_env(&r).unwrap();
        assert_eq!(m.env.desc.boot.partition, Some(3));
        assert_eq!(m.notes.len(), 1);
        assert!(m.notes[0].contains("foo"));
    }

    #[test]
    fn unmappable_rows_say_why() {
        type Change = fn(&mut LegacyEnv);
        let cases: [(Change, &str); 7] = [
            (
                |r| r.tarball = "/x.tzst|tzst|".into(),
                "unknown image kind \"tzst\"",
            ),
            (
                |r| r.tarball = "/a|b.tgz|tgz|".into(),
                "4 '|'-separated fields",
            ),
            (|r| r.visibility = "secret".into(), "unknown visibility"),
            (|r| r.fdisk_type = Some("zz".into()), "not hexadecimal"),
            (
                |r| r.postinstall = "/p,1.tgz|tgz||none".into(),
                "postinstall \"/p\"",
            ),
            (|r| r.environment_kind = "bsd".into(), "Invalid os"),
            (
                |r| r.options = Some("partitions: [".into()),
                "not readable YAML",
            ),
        ];
        for (change, why) in cases {
            let mut r = row();
            change(&mut r);
            let err = map_env(&r).unwrap_err();
            assert!(err.contains(why), "{err:?} should contain {why:?}");
        }
        let mut tar = row();
        tar.tarball = "/t.tgz|tgz|".into();
        tar.kernel.clear();
        assert!(map_env(&tar).unwrap_err().contains("'kernel' is mandatory"));
    }
}
