//! The rows of a Kadeploy 3.3 database (spec §9), column for column, as a source reads them.

/// A row of `environments`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegacyEnv {
    /// `id` (referenced by `nodes.env_id`).
    pub id: u32,
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: u32,
    /// `description` (NULL allowed).
    pub description: Option<String>,
    /// `author`.
    pub author: String,
    /// `tarball`: `file|shortkind|md5`.
    pub tarball: String,
    /// `preinstall`: `file|shortkind|md5|script` or empty.
    pub preinstall: String,
    /// `postinstall`: comma-joined `file|shortkind|md5|script`.
    pub postinstall: String,
    /// `hypervisor`.
    pub hypervisor: String,
    /// `hypervisor_params`.
    pub hypervisor_params: String,
    /// `initrd`.
    pub initrd: String,
    /// `kernel`.
    pub kernel: String,
    /// `kernel_params`.
    pub kernel_params: String,
    /// `fdisk_type`: the partition type in hexadecimal (NULL allowed).
    pub fdisk_type: Option<String>,
    /// `filesystem` (NULL allowed).
    pub filesystem: Option<String>,
    /// `user`: the owner (NULL allowed; the column's default is `nobody`).
    pub user: Option<String>,
    /// `allowed_users` (unused by Kadeploy 3.3).
    pub allowed_users: String,
    /// `environment_kind`: the OS.
    pub environment_kind: String,
    /// `visibility`.
    pub visibility: String,
    /// `demolishing_env` (0 or 1).
    pub demolishing_env: i64,
    /// `multipart` (0 or 1).
    pub multipart: i64,
    /// `options`: a Ruby YAML dump of `partitions`, `block_device`, `deploy_part` (NULL or empty allowed).
    pub options: Option<String>,
}

/// A row of `rights`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyRight {
    /// `user`.
    pub user: String,
    /// `node`, `*` for every node.
    pub node: String,
    /// `part`, `*` for every partition.
    pub part: String,
}

/// A row of `nodes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyNode {
    /// `hostname`.
    pub hostname: String,
    /// `state`.
    pub state: String,
    /// `env_id`: an `environments.id`, or -1.
    pub env_id: i64,
    /// `date`: epoch seconds.
    pub date: i64,
    /// `user`.
    pub user: String,
}

/// A row of `log`: one node in one workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyLog {
    /// `wid`.
    pub wid: String,
    /// `hostname`.
    pub hostname: String,
    /// `step1`, `step2`, `step3`.
    pub steps: [String; 3],
    /// `timeout_step1..3`.
    pub timeouts: [i64; 3],
    /// `retry_step1..3`.
    pub retries: [i64; 3],
    /// `start`: epoch seconds.
    pub start: i64,
    /// `step1_duration..step3_duration`.
    pub durations: [i64; 3],
    /// `env`: `name:version` or empty.
    pub env: String,
    /// `anonymous_env`: `true` or `false`.
    pub anonymous_env: String,
    /// `md5`.
    pub md5: String,
    /// `success`: `true` or `false`.
    pub success: String,
    /// `error`.
    pub error: String,
    /// `user`.
    pub user: String,
}

impl LegacyEnv {
    /// How reports name this row.
    pub fn identity(&self) -> String {
        format!(
            "id={} ({}/{} version {})",
            self.id,
            self.user.as_deref().unwrap_or("nobody"),
            self.name,
            self.version
        )
    }
}

impl LegacyRight {
    /// How reports name this row.
    pub fn identity(&self) -> String {
        format!(
            "user={:?} node={:?} part={:?}",
            self.user, self.node, self.part
        )
    }
}

impl LegacyNode {
    /// How reports name this row.
    pub fn identity(&self) -> String {
        format!("hostname={:?} date={}", self.hostname, self.date)
    }
}

impl LegacyLog {
    /// How reports name this row.
    pub fn identity(&self) -> String {
        format!(
            "wid={:?} hostname={:?} start={}",
            self.wid, self.hostname, self.start
        )
    }
}
