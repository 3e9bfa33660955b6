//! Writes of a migration from another Kadeploy installation (`crate::migrate`): environments keyed by owner,
//! name and version, rights, node states and log rows, all in one transaction, each write checking what is
//! already stored so that importing the same data twice leaves the store as the first import did.

use super::envs::options_json;
use super::log::LogRow;
use super::{NodeRow, Result, Store, StoreError};
use kadeploy::envdesc::{ArchiveDesc, EnvDesc};
use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params, params_from_iter};

/// What one import write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// The row was new.
    Inserted,
    /// A row with the same key existed with other values: it now has the imported ones.
    Updated,
    /// The same row was already stored.
    Unchanged,
    /// The stored row is newer than the imported one and was kept (node states).
    KeptNewer,
}

/// An environment to import: its description, owner, and the checksums and columns the description omits.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedEnv {
    /// Owner.
    pub owner: String,
    /// The description (validated).
    pub desc: EnvDesc,
    /// Checksum of the image.
    pub md5: String,
    /// Checksum of the pre-install archive (empty without one).
    pub preinstall_md5: String,
    /// Checksums of the post-install archives, in the order of `desc.postinstalls`.
    pub postinstall_md5s: Vec<String>,
    /// Kadeploy's unused `allowed_users` column, kept as it was.
    pub allowed_users: String,
}

/// A log row to import, with the `md5` column that the server's own rows leave empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportedLog {
    /// The row.
    pub row: LogRow,
    /// The `md5` column.
    pub md5: String,
}

/// The environment columns besides `id`, in this order (Kadeploy 3.3's `environments` table, which our store
/// keeps).
pub const ENV_COLUMNS: [&str; 21] = [
    "name",
    "version",
    "description",
    "author",
    "tarball",
    "preinstall",
    "postinstall",
    "hypervisor",
    "hypervisor_params",
    "initrd",
    "kernel",
    "kernel_params",
    "fdisk_type",
    "filesystem",
    "user",
    "allowed_users",
    "environment_kind",
    "visibility",
    "demolishing_env",
    "multipart",
    "options",
];

/// `file|shortkind|md5|script`, the encoding of Kadeploy 3.3 for pre- and post-install archives.
fn archive_column(a: &ArchiveDesc, md5: &str) -> String {
    let short = match a.compression.as_str() {
        "bzip2" => "tbz2",
        "xz" => "txz",
        _ => "tgz",
    };
    format!("{}|{short}|{md5}|{}", a.archive, a.script)
}

impl ImportedEnv {
    /// The stored columns, in the order of [`ENV_COLUMNS`].
    fn columns(&self) -> Vec<Sql> {
        let d = &self.desc;
        let text = |s: &str| Sql::Text(s.to_string());
        let postinstall = d
            .postinstalls
            .iter()
            .enumerate()
            .map(|(i, a)| {
                archive_column(
                    a,
                    self.postinstall_md5s
                        .get(i)
                        .map(String::as_str)
                        .unwrap_or(""),
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        vec![
            text(&d.name),
            Sql::Integer(i64::from(d.version)),
            text(&d.description),
            text(&d.author),
            Sql::Text(format!("{}|{}|{}", d.image.file, d.short_kind(), self.md5)),
            Sql::Text(
                d.preinstall
                    .as_ref()
                    .map(|a| archive_column(a, &self.preinstall_md5))
                    .unwrap_or_default(),
            ),
            Sql::Text(postinstall),
            text(&d.boot.hypervisor),
            text(&d.boot.hypervisor_params),
            text(&d.boot.initrd),
            text(&d.boot.kernel),
            text(&d.boot.kernel_params),
            Sql::Text(format!("{:x}", d.partition_type)),
            text(&d.filesystem),
            text(&self.owner),
            text(&self.allowed_users),
            text(&d.os),
            text(d.visibility.as_str()),
            Sql::Integer(i64::from(d.destructive)),
            Sql::Integer(i64::from(d.multipart)),
            options_json(d).map(Sql::Text).unwrap_or(Sql::Null),
        ]
    }
}

/// The import's view of the store: one open transaction.
pub struct ImportTx<'a> {
    tx: &'a Transaction<'a>,
}

impl Store {
    /// Runs a migration's writes in one transaction, committed when `f` returns `Ok` and rolled back
    /// otherwise: a failed import leaves the store as it was.
    pub fn import<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut ImportTx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut inner = self.lock();
        inner.verify()?;
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let value = f(&mut ImportTx { tx: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        inner.verify()?;
        Ok(value)
    }
}

impl ImportTx<'_> {
    /// Stores `env` under its (owner, name, version): a new row takes `preferred_id` when that id is free;
    /// an existing row keeps its id and takes the imported values. Returns the stored id.
    pub fn upsert_environment(
        &mut self,
        env: &ImportedEnv,
        preferred_id: Option<i64>,
    ) -> Result<(i64, Upsert)> {
        let values = env.columns();
        let existing = self
            .tx
            .query_row(
                &format!(
                    "SELECT id, {} FROM environments WHERE user = ?1 AND name = ?2 AND version = ?3",
                    ENV_COLUMNS.join(", ")
                ),
                params![env.owner, env.desc.name, env.desc.version],
                |r| {
                    let id: i64 = r.get(0)?;
                    let stored = (1..=ENV_COLUMNS.len())
                        .map(|i| r.get::<_, Sql>(i))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok((id, stored))
                },
            )
            .optional()?;
        if let Some((id, stored)) = existing {
            if stored == values {
                return Ok((id, Upsert::Unchanged));
            }
            let set: Vec<String> = ENV_COLUMNS
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ?{}", i + 1))
                .collect();
            let mut args = values;
            args.push(Sql::Integer(id));
            self.tx.execute(
                &format!(
                    "UPDATE environments SET {} WHERE id = ?{}",
                    set.join(", "),
                    args.len()
                ),
                params_from_iter(args),
            )?;
            return Ok((id, Upsert::Updated));
        }
        let free = match preferred_id {
            Some(id) if id > 0 => self
                .tx
                .query_row("SELECT 1 FROM environments WHERE id = ?1", [id], |_| Ok(()))
                .optional()?
                .is_none()
                .then_some(id),
            _ => None,
        };
        let marks: Vec<String> = (1..=ENV_COLUMNS.len()).map(|i| format!("?{i}")).collect();
        let mut args = values;
        let (id_column, id_mark) = match free {
            Some(id) => {
                args.push(Sql::Integer(id));
                (", id", format!(", ?{}", args.len()))
            }
            None => ("", String::new()),
        };
        self.tx.execute(
            &format!(
                "INSERT INTO environments ({}{id_column}) VALUES ({}{id_mark})",
                ENV_COLUMNS.join(", "),
                marks.join(", ")
            ),
            params_from_iter(args),
        )?;
        Ok((self.tx.last_insert_rowid(), Upsert::Inserted))
    }

    /// Adds the right (`user`, `node`, `part`); `Unchanged` when it was there.
    pub fn insert_right(&mut self, user: &str, node: &str, part: &str) -> Result<Upsert> {
        let n = self.tx.execute(
            "INSERT OR IGNORE INTO rights (user, node, part) VALUES (?1, ?2, ?3)",
            params![user, node, part],
        )?;
        Ok(if n > 0 {
            Upsert::Inserted
        } else {
            Upsert::Unchanged
        })
    }

    /// Stores `host`'s state row unless the stored one is more recent (`KeptNewer`).
    pub fn upsert_node(&mut self, host: &str, row: &NodeRow) -> Result<Upsert> {
        let stored = self
            .tx
            .query_row(
                "SELECT state, env_id, date, user FROM nodes WHERE hostname = ?1",
                [host],
                |r| {
                    Ok(NodeRow {
                        state: r.get(0)?,
                        env_id: r.get(1)?,
                        date: r.get(2)?,
                        user: r.get(3)?,
                    })
                },
            )
            .optional()?;
        let outcome = match &stored {
            None => Upsert::Inserted,
            Some(s) if s == row => return Ok(Upsert::Unchanged),
            Some(s) if s.date > row.date => return Ok(Upsert::KeptNewer),
            Some(_) => Upsert::Updated,
        };
        self.tx.execute(
            "INSERT OR REPLACE INTO nodes (hostname, state, env_id, date, user) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![host, row.state, row.env_id, row.date, row.user],
        )?;
        Ok(outcome)
    }

    /// The stored log rows of workflow `wid` (one lookup in the `wid` index; a workflow has one row per
    /// node, so a few thousand rows at most).
    pub fn log_rows(&mut self, wid: &str) -> Result<Vec<ImportedLog>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT step1, step2, step3, timeout_step1, timeout_step2, timeout_step3, retry_step1, retry_step2,
             retry_step3, start, step1_duration, step2_duration, step3_duration, env, anonymous_env, md5, success,
             error, user, hostname FROM log INDEXED BY log_wid WHERE wid = ?1",
        )?;
        let rows = stmt
            .query_map(params![wid], |r| {
                Ok(ImportedLog {
                    row: LogRow {
                        wid: wid.into(),
                        hostname: r.get(19)?,
                        steps: [r.get(0)?, r.get(1)?, r.get(2)?],
                        timeouts: [r.get(3)?, r.get(4)?, r.get(5)?],
                        retries: [r.get(6)?, r.get(7)?, r.get(8)?],
                        start: r.get(9)?,
                        durations: [r.get(10)?, r.get(11)?, r.get(12)?],
                        env: r.get(13)?,
                        anonymous_env: r.get::<_, String>(14)? == "true",
                        md5: r.get(15)?,
                        success: r.get::<_, String>(16)? == "true",
                        error: r.get(17)?,
                        user: r.get(18)?,
                    },
                    md5: r.get(15)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Appends one log row, with its `md5`.
    pub fn insert_log_row(&mut self, log: &ImportedLog) -> Result<()> {
        let r = &log.row;
        self.tx
            .prepare_cached(
                "INSERT INTO log (wid, hostname, step1, step2, step3, timeout_step1, timeout_step2, timeout_step3,
                 retry_step1, retry_step2, retry_step3, start, step1_duration, step2_duration, step3_duration, env,
                 anonymous_env, md5, success, error, user)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
            )?
            .execute(params![
                r.wid, r.hostname, r.steps[0], r.steps[1], r.steps[2], r.timeouts[0], r.timeouts[1], r.timeouts[2],
                r.retries[0], r.retries[1], r.retries[2], r.start, r.durations[0], r.durations[1], r.durations[2],
                r.env, r.anonymous_env.to_string(), log.md5, r.success.to_string(), r.error, r.user
            ])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(version: u32, md5: &str) -> ImportedEnv {
        let v = json!({"name": "deb", "version": version, "os": "linux", "filesystem": "ext4",
            "image": {"file": "/e.tgz", "kind": "tar", "compression": "gzip"}, "boot": {"kernel": "/vmlinuz"},
            "postinstalls": [{"archive": "/p.tbz2", "compression": "bzip2", "script": "go.sh"}]});
        ImportedEnv {
            owner: "alice".into(),
            desc: EnvDesc::from_value(&v).unwrap().0,
            md5: md5.into(),
            preinstall_md5: String::new(),
            postinstall_md5s: vec!["p5".into()],
            allowed_users: "bob".into(),
        }
    }

    #[test]
    fn environments_upsert_by_owner_name_version_and_keep_free_ids() {
        let s = Store::in_memory().unwrap();
        let (a, how) = s
            .import(|tx| tx.upsert_environment(&env(1, "m1"), Some(42)))
            .unwrap();
        assert_eq!((a, how), (42, Upsert::Inserted));
        let again = s
            .import(|tx| tx.upsert_environment(&env(1, "m1"), Some(42)))
            .unwrap();
        assert_eq!(again, (42, Upsert::Unchanged));
        let changed = s
            .import(|tx| tx.upsert_environment(&env(1, "m2"), Some(7)))
            .unwrap();
        assert_eq!(changed, (42, Upsert::Updated));
        let (b, _) = s
            .import(|tx| tx.upsert_environment(&env(2, "m1"), Some(42)))
            .unwrap();
        assert_ne!(b, 42, "a taken id is not reused");
        let row = s.env_by_id(42).unwrap().unwrap();
        assert_eq!(row.checksums.image, "m2");
        assert_eq!(row.desc, env(1, "m2").desc);
    }

    #[test]
    fn a_failed_import_writes_nothing() {
        let s = Store::in_memory().unwrap();
        let r: std::result::Result<(), StoreError> = s.import(|tx| {
            tx.insert_right("alice", "*", "*")?;
            Err(StoreError::Sql(rusqlite::Error::InvalidQuery))
        });
        assert!(r.is_err());
        assert!(s.rights_get(None, &[]).unwrap().is_empty());
    }

    #[test]
    fn nodes_keep_the_newer_row_and_logs_keep_md5() {
        let s = Store::in_memory().unwrap();
        let node = |date| NodeRow {
            state: "deployed".into(),
            env_id: 3,
            date,
            user: "alice".into(),
        };
        let outcomes = s
            .import(|tx| {
                Ok::<_, StoreError>([
                    tx.upsert_node("n1", &node(10))?,
                    tx.upsert_node("n1", &node(10))?,
                    tx.upsert_node("n1", &node(5))?,
                    tx.upsert_node("n1", &node(20))?,
                ])
            })
            .unwrap();
        assert_eq!(
            outcomes,
            [
                Upsert::Inserted,
                Upsert::Unchanged,
                Upsert::KeptNewer,
                Upsert::Updated
            ]
        );
        let log = ImportedLog {
            row: LogRow {
                md5: "abc".into(),
                ..LogRow::new("D-1", "n1", "alice", 100)
            },
            md5: "abc".into(),
        };
        let back = s
            .import(|tx| {
                tx.insert_log_row(&log)?;
                tx.log_rows("D-1")
            })
            .unwrap();
        assert_eq!(back, vec![log]);
    }
}
