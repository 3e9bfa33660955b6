//! Environment descriptions as users write them and the REST API shows them (spec §8.1), with Kadeploy's
//! validation (`Environment#load_from_desc`) and the conversion to the engine's [`Environment`].

use crate::config::Archive;
use crate::environment::Environment;
use crate::error::{ApiError, RequestError};
use hal::{ImageKind, ImageSpec};
use serde::Serialize;
use serde_json::{Map, Value};

/// Who may see and use an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only the owner.
    Private,
    /// Anyone naming the owner.
    Shared,
    /// Listed for everyone.
    Public,
}

impl Visibility {
    /// Parses `private`, `shared` or `public`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Visibility::Private),
            "shared" => Some(Visibility::Shared),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Public => "public",
        }
    }
}

/// `image`: the file, its kind and compression (a string, or 0..9 for fsa).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageDesc {
    /// File reference (§3.4).
    pub file: String,
    /// `tar`, `dd` or `fsa`.
    pub kind: String,
    /// `gzip`, `bzip2`, `xz` (a JSON integer for fsa).
    pub compression: Value,
}

/// A pre- or post-install archive.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArchiveDesc {
    /// File reference of the tar archive.
    pub archive: String,
    /// `gzip`, `bzip2` or `xz`.
    pub compression: String,
    /// Script inside the archive with its arguments, `none` to skip.
    pub script: String,
}

/// `boot`: what to boot once deployed; empty keys are omitted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BootDesc {
    /// Kernel path in the image.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kernel: String,
    /// Initrd path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub initrd: String,
    /// Kernel parameters.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kernel_params: String,
    /// Hypervisor path (xen).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hypervisor: String,
    /// Hypervisor parameters.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hypervisor_params: String,
    /// Block device to boot (multipart).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub block_device: String,
    /// Partition to boot (multipart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

impl BootDesc {
    fn is_empty(&self) -> bool {
        *self == BootDesc::default()
    }
}

/// One partition of a multipart image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartitionDesc {
    /// Id inside the fsa archive.
    pub id: u32,
    /// Target device.
    pub device: String,
}

/// `options`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OptionsDesc {
    /// Partitions of a multipart image.
    pub partitions: Vec<PartitionDesc>,
}

/// An environment description, serialized in Kadeploy's key order (`Environment#to_hash`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvDesc {
    /// Name (spaces allowed).
    pub name: String,
    /// Version (default 1).
    pub version: u32,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// Visibility (default private).
    pub visibility: Visibility,
    /// `destructive` (the DB's `demolishing_env`).
    pub destructive: bool,
    /// `linux`, `xen` or `other`.
    pub os: String,
    /// The image.
    pub image: ImageDesc,
    /// Environment pre-install.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preinstall: Option<ArchiveDesc>,
    /// User post-installs, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub postinstalls: Vec<ArchiveDesc>,
    /// Boot settings.
    #[serde(skip_serializing_if = "BootDesc::is_empty")]
    pub boot: BootDesc,
    /// File system of the deploy partition.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filesystem: String,
    /// MS-DOS partition type.
    pub partition_type: u32,
    /// fsa multi-partition image.
    pub multipart: bool,
    /// Multipart layout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<OptionsDesc>,
}

/// The fields a description may carry; others give `Unused field` warnings.
const FIELDS: [&str; 15] = [
    "name",
    "version",
    "description",
    "author",
    "visibility",
    "destructive",
    "os",
    "image",
    "preinstall",
    "postinstalls",
    "boot",
    "filesystem",
    "partition_type",
    "multipart",
    "options",
];

fn bad(msg: impl Into<String>) -> RequestError {
    RequestError::new(ApiError::InvalidEnvironment, msg)
}

fn field<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn string(m: &Map<String, Value>, key: &str, mandatory: bool) -> Result<String, RequestError> {
    match field(m, key) {
        None if mandatory => Err(bad(format!("The field '{key}' is mandatory"))),
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(bad(format!("The field '{key}' should be a String"))),
    }
}

fn int(m: &Map<String, Value>, key: &str) -> Result<Option<u32>, RequestError> {
    match field(m, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| bad(format!("The field '{key}' should be a positive Integer"))),
        Some(Value::String(s)) => parse_int(s)
            .map(Some)
            .ok_or_else(|| bad(format!("The field '{key}' should be an Integer"))),
        Some(_) => Err(bad(format!("The field '{key}' should be an Integer"))),
    }
}

fn parse_int(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn boolean(m: &Map<String, Value>, key: &str) -> Result<bool, RequestError> {
    match field(m, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(format!("The field '{key}' should be a Boolean"))),
    }
}

fn object<'a>(
    m: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, RequestError> {
    match field(m, key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(bad(format!("The field '{key}' should be a Hash"))),
    }
}

fn archive(m: &Map<String, Value>) -> Result<ArchiveDesc, RequestError> {
    let compression = string(m, "compression", true)?;
    check_compression(&compression)?;
    let script = string(m, "script", false)?;
    Ok(ArchiveDesc {
        archive: string(m, "archive", true)?,
        compression,
        script: if script.is_empty() {
            "none".into()
        } else {
            script
        },
    })
}

fn check_compression(c: &str) -> Result<(), RequestError> {
    if ["gzip", "bzip2", "xz"].contains(&c) {
        Ok(())
    } else {
        Err(bad(format!(
            "Invalid compression '{c}' (expected gzip, bzip2 or xz)"
        )))
    }
}

impl EnvDesc {
    /// Validates a description (a JSON or YAML object); returns it with `Unused field` warnings.
    pub fn from_value(v: &Value) -> Result<(EnvDesc, Vec<String>), RequestError> {
        let m = v
            .as_object()
            .ok_or_else(|| bad("The environment description should be a Hash"))?;
        let warnings = m
            .keys()
            .filter(|k| {
                !FIELDS.contains(&k.as_str()) && !["user", "kind", "id"].contains(&k.as_str())
            })
            .map(|k| format!("Warning[env_desc]: Unused field '{k}'"))
            .collect();
        let visibility = match string(m, "visibility", false)?.as_str() {
            "" => Visibility::Private,
            s => Visibility::parse(s).ok_or_else(|| bad(format!("Invalid visibility '{s}'")))?,
        };
        let os = string(m, "os", true)?;
        if !["linux", "xen", "other"].contains(&os.as_str()) {
            return Err(bad(format!(
                "Invalid os '{os}' (expected linux, xen or other)"
            )));
        }
        let image = image_desc(m)?;
        let preinstall = object(m, "preinstall")?.map(archive).transpose()?;
        let postinstalls = postinstalls(m)?;
        let boot = boot_desc(m)?;
        let multipart = boolean(m, "multipart")?;
        let options = match object(m, "options")? {
            None => None,
            Some(o) => Some(OptionsDesc {
                partitions: partitions(o)?,
            }),
        };
        let filesystem = string(m, "filesystem", false)?;
        if image.kind == "tar" {
            check_tar(&os, &boot, &filesystem)?;
        }
        if multipart
            && (boot.block_device.is_empty() || boot.partition.is_none() || options.is_none())
        {
            return Err(bad(
                "The fields 'boot/block_device', 'boot/partition' and 'options' are mandatory for multipart environments",
            ));
        }
        let name = string(m, "name", true)?;
        if name.trim().is_empty() {
            return Err(bad("The field 'name' cannot be empty"));
        }
        let desc = EnvDesc {
            name,
            version: int(m, "version")?.unwrap_or(1),
            description: string(m, "description", false)?,
            author: string(m, "author", false)?,
            visibility,
            destructive: boolean(m, "destructive")?,
            os,
            image,
            preinstall,
            postinstalls,
            boot,
            filesystem,
            partition_type: int(m, "partition_type")?.unwrap_or(0),
            multipart,
            options,
        };
        Ok((desc, warnings))
    }

    /// The description as a JSON object (Kadeploy's key order).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Kadeploy's short image kind: `tgz`, `tbz2`, `txz`, `ddgz`, ..., `fsa<N>`.
    pub fn short_kind(&self) -> String {
        let suffix = |c: &str| match c {
            "gzip" => "gz",
            "bzip2" => "bz2",
            "xz" => "xz",
            _ => "",
        };
        match self.image.kind.as_str() {
            "fsa" => format!("fsa{}", self.image.compression.as_u64().unwrap_or(0)),
            "dd" => format!(
                "dd{}",
                suffix(self.image.compression.as_str().unwrap_or(""))
            ),
            _ => format!("t{}", suffix(self.image.compression.as_str().unwrap_or(""))),
        }
    }

    /// The engine's environment, owned by `user`, with an image of `size` bytes expanding by `ratio`.
    pub fn to_engine(&self, user: &str, size: u64, ratio: f64) -> Environment {
        let kind = match self.image.kind.as_str() {
            "dd" => ImageKind::Dd,
            "fsa" => ImageKind::Fsa,
            _ => ImageKind::Tar,
        };
        let compression = match &self.image.compression {
            Value::String(s) => s.clone(),
            _ => "none".into(),
        };
        let to_archive = |a: &ArchiveDesc| Archive {
            file: server_path(&a.archive),
            format: format!(
                "t{}",
                if a.compression == "gzip" {
                    "gz"
                } else {
                    &a.compression
                }
            ),
            script: (a.script != "none").then(|| a.script.clone()),
        };
        Environment {
            name: self.name.clone(),
            version: self.version,
            user: user.into(),
            os: self.os.clone(),
            image: ImageSpec {
                path: server_path(&self.image.file),
                kind,
                compression,
                size,
                uncompressed_size: Some((size as f64 * ratio) as u64),
            },
            kernel: self.boot.kernel.clone(),
            initrd: self.boot.initrd.clone(),
            kernel_params: self.boot.kernel_params.clone(),
            hypervisor: self.boot.hypervisor.clone(),
            hypervisor_params: self.boot.hypervisor_params.clone(),
            filesystem: self.filesystem.clone(),
            partition_type: self.partition_type,
            multipart: self.multipart,
            fsa_partitions: self
                .options
                .iter()
                .flat_map(|o| &o.partitions)
                .map(|p| hal::FsaPart {
                    id: p.id,
                    device: p.device.clone(),
                })
                .collect(),
            preinstall: self.preinstall.as_ref().map(to_archive),
            postinstalls: self.postinstalls.iter().map(to_archive).collect(),
        }
    }
}

fn partitions(o: &Map<String, Value>) -> Result<Vec<PartitionDesc>, RequestError> {
    let Some(Value::Array(items)) = field(o, "partitions") else {
        return Err(bad(
            "The field 'options/partitions' is mandatory and should be an Array",
        ));
    };
    let mut out: Vec<PartitionDesc> = Vec::new();
    for p in items {
        let p = p
            .as_object()
            .ok_or_else(|| bad("options/partitions items should be Hashes"))?;
        let id = int(p, "id")?
            .ok_or_else(|| bad("The field 'id' is mandatory in options/partitions"))?;
        let device = string(p, "device", true)?;
        if out.iter().any(|q| q.id == id || q.device == device) {
            return Err(bad(
                "The ids and devices of options/partitions must be unique",
            ));
        }
        out.push(PartitionDesc { id, device });
    }
    Ok(out)
}

/// The path the backends open for a file reference: `server:///abs/path` is `/abs/path` on this server;
/// other references (cached copies, URLs) are kept as they are.
pub fn server_path(file: &str) -> String {
    file.strip_prefix("server://").unwrap_or(file).to_string()
}

/// The `image` field: file, kind, and a compression that suits the kind.
fn image_desc(m: &Map<String, Value>) -> Result<ImageDesc, RequestError> {
    let im = object(m, "image")?.ok_or_else(|| bad("The field 'image' is mandatory"))?;
    let kind = string(im, "kind", true)?;
    let compression = match kind.as_str() {
        "tar" | "dd" => {
            let c = string(im, "compression", true)?;
            check_compression(&c)?;
            Value::String(c)
        }
        "fsa" => match int(im, "compression")? {
            Some(n) if n <= 9 => Value::from(n),
            None => Value::from(0),
            Some(n) => {
                return Err(bad(format!(
                    "Invalid fsa compression level {n} (expected 0 to 9)"
                )));
            }
        },
        k => {
            return Err(bad(format!(
                "Invalid image kind '{k}' (expected tar, dd or fsa)"
            )));
        }
    };
    Ok(ImageDesc {
        file: string(im, "file", true)?,
        kind,
        compression,
    })
}

/// The `postinstalls` field: an array of archives.
fn postinstalls(m: &Map<String, Value>) -> Result<Vec<ArchiveDesc>, RequestError> {
    match field(m, "postinstalls") {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| {
                p.as_object()
                    .ok_or_else(|| bad("postinstalls items should be Hashes"))
                    .and_then(archive)
            })
            .collect(),
        Some(_) => Err(bad("The field 'postinstalls' should be an Array")),
    }
}

/// The `boot` field (every key optional).
fn boot_desc(m: &Map<String, Value>) -> Result<BootDesc, RequestError> {
    Ok(match object(m, "boot")? {
        None => BootDesc::default(),
        Some(b) => BootDesc {
            kernel: string(b, "kernel", false)?,
            initrd: string(b, "initrd", false)?,
            kernel_params: string(b, "kernel_params", false)?,
            hypervisor: string(b, "hypervisor", false)?,
            hypervisor_params: string(b, "hypervisor_params", false)?,
            block_device: string(b, "block_device", false)?,
            partition: int(b, "partition")?,
        },
    })
}

/// What a `tar` image of `os` needs: a kernel, a filesystem, and a hypervisor for Xen.
fn check_tar(os: &str, boot: &BootDesc, filesystem: &str) -> Result<(), RequestError> {
    if boot.kernel.is_empty() {
        return Err(bad(format!(
            "The field 'kernel' is mandatory for OS {os} with the 'tar' image kind"
        )));
    }
    if filesystem.is_empty() {
        return Err(bad(format!(
            "The field 'filesystem' is mandatory for OS {os} with the 'tar' image kind"
        )));
    }
    if os == "xen" && boot.hypervisor.is_empty() {
        return Err(bad(
            "The field 'hypervisor' is mandatory for OS xen with the 'tar' image kind",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tar_needs_kernel_and_filesystem() {
        let v = json!({"name": "e", "os": "linux", "image": {"file": "/a.tgz", "kind": "tar", "compression": "gzip"}});
        let err = EnvDesc::from_value(&v).unwrap_err();
        assert_eq!(err.kind.code(), 7);
        assert!(err.detail.contains("kernel"));
    }

    #[test]
    fn full_description_round_trips() {
        let v = json!({"name": "debian-xen", "version": 3, "visibility": "shared", "os": "xen", "foo": 1,
            "image": {"file": "/x.tgz", "kind": "tar", "compression": "gzip"},
            "postinstalls": [{"archive": "/p.tgz", "compression": "gzip", "script": "t.sh"}],
            "boot": {"kernel": "/vmlinuz", "hypervisor": "/xen.gz"}, "partition_type": "0x83", "filesystem": "ext2"});
        let (d, warnings) = EnvDesc::from_value(&v).unwrap();
        assert_eq!(
            warnings,
            vec!["Warning[env_desc]: Unused field 'foo'".to_string()]
        );
        assert_eq!(d.partition_type, 131);
        assert_eq!(d.short_kind(), "tgz");
        let out = d.to_value();
        assert_eq!(out["version"], 3);
        assert!(out.get("preinstall").is_none());
        assert_eq!(EnvDesc::from_value(&out).unwrap().0, d);
    }

    #[test]
    fn fsa_compression_is_an_integer() {
        let v = json!({"name": "m", "os": "linux", "multipart": true, "image": {"file": "/m.fsa", "kind": "fsa", "compression": 3},
            "boot": {"block_device": "/dev/sda", "partition": 2}, "options": {"partitions": [{"id": 0, "device": "/dev/sda1"}]}});
        let (d, _) = EnvDesc::from_value(&v).unwrap();
        assert_eq!(d.short_kind(), "fsa3");
    }
}
