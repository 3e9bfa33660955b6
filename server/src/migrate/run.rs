//! The import itself: each table of the source in turn (environments first, since node states refer to
//! them by id), every row mapped, written through [`ImportTx`], counted, and reported when it is not kept
//! as it was.

use super::envs::map_env;
use super::report::{Issue, Report, TableCounts};
use super::{Fetched, LegacySource, MigrateError, SourceError};
use crate::store::{ImportTx, ImportedLog, LogRow, NodeRow, Store};
use std::collections::BTreeMap;

/// Imports every table of `source` into `store` in one transaction; `on_issue` sees each row that is left
/// out or changed, as it is met. Nothing is written when an error is returned.
pub fn import(
    store: &Store,
    source: &mut dyn LegacySource,
    on_issue: &mut dyn FnMut(&Issue),
) -> Result<Report, MigrateError> {
    store.import(|tx| {
        let mut run = Run {
            tx,
            report: Report::default(),
            on_issue,
            env_ids: BTreeMap::new(),
        };
        run.environments(source)?;
        run.rights(source)?;
        run.nodes(source)?;
        run.log(source)?;
        Ok(run.report)
    })
}

/// One import in progress.
struct Run<'a, 't> {
    tx: &'a mut ImportTx<'t>,
    report: Report,
    on_issue: &'a mut dyn FnMut(&Issue),
    /// Kadeploy 3.3 environment id → our id.
    env_ids: BTreeMap<u32, i64>,
}

impl Run<'_, '_> {
    fn counts(&mut self, table: usize) -> &mut TableCounts {
        &mut self.report.tables[table]
    }

    fn issue(&mut self, table: usize, identity: String, reason: String, skipped: bool) {
        let c = self.counts(table);
        if skipped {
            c.skipped += 1;
        } else {
            c.altered += 1;
        }
        (self.on_issue)(&Issue {
            table: super::TABLES[table],
            identity,
            reason,
            skipped,
        });
    }

    /// Counts a read row and returns it, or reports it when it could not be read.
    fn read<R>(
        &mut self,
        table: usize,
        item: Result<Fetched<R>, SourceError>,
    ) -> Result<Option<R>, MigrateError> {
        self.counts(table).read += 1;
        match item? {
            Fetched::Row(row) => Ok(Some(row)),
            Fetched::Unreadable { identity, reason } => {
                self.issue(table, identity, reason, true);
                Ok(None)
            }
        }
    }

    fn environments(&mut self, source: &mut dyn LegacySource) -> Result<(), MigrateError> {
        const T: usize = 0;
        // (owner, name, version) → (first Kadeploy 3.3 id, our id).
        let mut seen: BTreeMap<(String, String, u32), (u32, i64)> = BTreeMap::new();
        for item in source.environments()? {
            let Some(row) = self.read(T, item)? else {
                continue;
            };
            let mapped = match map_env(&row) {
                Ok(m) => m,
                Err(reason) => {
                    self.issue(T, row.identity(), reason, true);
                    continue;
                }
            };
            let key = (
                mapped.env.owner.clone(),
                mapped.env.desc.name.clone(),
                mapped.env.desc.version,
            );
            if let Some(&(first, ours)) = seen.get(&key) {
                self.env_ids.insert(row.id, ours);
                let reason = format!(
                    "same user, name and version as environment id={first}, which was imported instead; \
                     node states on this one refer to that one"
                );
                self.issue(T, row.identity(), reason, true);
                continue;
            }
            let (ours, how) = self
                .tx
                .upsert_environment(&mapped.env, Some(i64::from(row.id)))?;
            self.counts(T).count(how);
            self.env_ids.insert(row.id, ours);
            seen.insert(key, (row.id, ours));
            if !mapped.notes.is_empty() {
                self.issue(T, row.identity(), mapped.notes.join("; "), false);
            }
        }
        Ok(())
    }

    fn rights(&mut self, source: &mut dyn LegacySource) -> Result<(), MigrateError> {
        const T: usize = 1;
        for item in source.rights()? {
            let Some(r) = self.read(T, item)? else {
                continue;
            };
            let empty = if r.user.trim().is_empty() {
                Some("user")
            } else if r.node.trim().is_empty() {
                Some("node")
            } else {
                None
            };
            if let Some(column) = empty {
                self.issue(T, r.identity(), format!("the {column} is empty"), true);
                continue;
            }
            let how = self.tx.insert_right(&r.user, &r.node, &r.part)?;
            self.counts(T).count(how);
        }
        Ok(())
    }

    fn nodes(&mut self, source: &mut dyn LegacySource) -> Result<(), MigrateError> {
        const T: usize = 2;
        let mut last: Option<(String, i64)> = None;
        for item in source.nodes()? {
            let Some(n) = self.read(T, item)? else {
                continue;
            };
            if n.hostname.trim().is_empty() {
                self.issue(T, n.identity(), "the hostname is empty".into(), true);
                continue;
            }
            if let Some((host, date)) = &last
                && *host == n.hostname
            {
                let reason = format!(
                    "another row of this host (date={date}) is more recent and was imported"
                );
                self.issue(T, n.identity(), reason, true);
                continue;
            }
            last = Some((n.hostname.clone(), n.date));
            let known = u32::try_from(n.env_id)
                .ok()
                .and_then(|id| self.env_ids.get(&id).copied());
            let env_id = match known {
                _ if n.env_id == -1 => -1,
                Some(ours) => ours,
                None => {
                    let reason = format!(
                        "env_id {} is not an imported environment: the state is kept without environment (-1)",
                        n.env_id
                    );
                    self.issue(T, n.identity(), reason, false);
                    -1
                }
            };
            let row = NodeRow {
                state: n.state,
                env_id,
                date: n.date,
                user: n.user,
            };
            let how = self.tx.upsert_node(&n.hostname, &row)?;
            self.counts(T).count(how);
        }
        Ok(())
    }

    fn log(&mut self, source: &mut dyn LegacySource) -> Result<(), MigrateError> {
        const T: usize = 3;
        let boolean = |s: &str| match s {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        // The stored rows of the current workflow, by host, not matched by a source row yet.
        let mut wid: Option<String> = None;
        let mut stored: BTreeMap<String, Vec<ImportedLog>> = BTreeMap::new();
        for item in source.log()? {
            let Some(l) = self.read(T, item)? else {
                continue;
            };
            let bad = if l.wid.is_empty() {
                Some("the wid is empty".to_string())
            } else if l.hostname.is_empty() {
                Some("the hostname is empty".to_string())
            } else if boolean(&l.success).is_none() {
                Some(format!("success {:?} is neither true nor false", l.success))
            } else if boolean(&l.anonymous_env).is_none() {
                Some(format!(
                    "anonymous_env {:?} is neither true nor false",
                    l.anonymous_env
                ))
            } else {
                None
            };
            if let Some(reason) = bad {
                self.issue(T, l.identity(), reason, true);
                continue;
            }
            let record = ImportedLog {
                row: LogRow {
                    wid: l.wid,
                    hostname: l.hostname,
                    steps: l.steps,
                    timeouts: l.timeouts,
                    retries: l.retries,
                    start: l.start,
                    durations: l.durations,
                    env: l.env,
                    anonymous_env: l.anonymous_env == "true",
                    md5: l.md5.clone(),
                    success: l.success == "true",
                    error: l.error,
                    user: l.user,
                },
                md5: l.md5,
            };
            if wid.as_deref() != Some(record.row.wid.as_str()) {
                stored.clear();
                for row in self.tx.log_rows(&record.row.wid)? {
                    stored
                        .entry(row.row.hostname.clone())
                        .or_default()
                        .push(row);
                }
                wid = Some(record.row.wid.clone());
            }
            let same_host = stored.get_mut(&record.row.hostname);
            match same_host
                .and_then(|rows| rows.iter().position(|s| *s == record).map(|i| (rows, i)))
            {
                Some((rows, i)) => {
                    rows.swap_remove(i);
                    self.counts(T).unchanged += 1;
                }
                None => {
                    self.tx.insert_log_row(&record)?;
                    self.counts(T).inserted += 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{LegacyEnv, LegacyLog, LegacyNode, LegacyRight, Rows};

    /// A source of rows held in memory.
    #[derive(Default)]
    struct Memory {
        envs: Vec<Fetched<LegacyEnv>>,
        rights: Vec<Fetched<LegacyRight>>,
        nodes: Vec<Fetched<LegacyNode>>,
        log: Vec<Fetched<LegacyLog>>,
    }

    fn rows<T: Clone + 'static>(v: &[Fetched<T>]) -> Result<Rows<'static, T>, SourceError> {
        Ok(Box::new(
            v.iter().cloned().map(Ok).collect::<Vec<_>>().into_iter(),
        ))
    }

    impl LegacySource for Memory {
        fn environments(&mut self) -> Result<Rows<'_, LegacyEnv>, SourceError> {
            rows(&self.envs)
        }
        fn rights(&mut self) -> Result<Rows<'_, LegacyRight>, SourceError> {
            rows(&self.rights)
        }
        fn nodes(&mut self) -> Result<Rows<'_, LegacyNode>, SourceError> {
            rows(&self.nodes)
        }
        fn log(&mut self) -> Result<Rows<'_, LegacyLog>, SourceError> {
            rows(&self.log)
        }
    }

    fn env(id: u32, user: &str, version: u32) -> Fetched<LegacyEnv> {
        Fetched::Row(LegacyEnv {
            id,
            name: "deb".into(),
            version,
            user: Some(user.into()),
            tarball: "/d.ddgz|ddgz|m".into(),
            environment_kind: "other".into(),
            visibility: "private".into(),
            ..Default::default()
        })
    }

    fn node(host: &str, env_id: i64, date: i64) -> Fetched<LegacyNode> {
        Fetched::Row(LegacyNode {
            hostname: host.into(),
            state: "deployed".into(),
            env_id,
            date,
            user: "alice".into(),
        })
    }

    fn log(host: &str, success: &str) -> Fetched<LegacyLog> {
        Fetched::Row(LegacyLog {
            wid: "D-1".into(),
            hostname: host.into(),
            anonymous_env: "false".into(),
            success: success.into(),
            ..Default::default()
        })
    }

    fn source() -> Memory {
        let right = |u: &str, n: &str, p: &str| {
            Fetched::Row(LegacyRight {
                user: u.into(),
                node: n.into(),
                part: p.into(),
            })
        };
        Memory {
            envs: vec![env(7, "alice", 1), env(8, "alice", 1), env(9, "bob", 1)],
            rights: vec![
                right("alice", "*", "*"),
                right("alice", "*", "*"),
                right("", "n1", "*"),
            ],
            nodes: vec![node("n1", 8, 20), node("n1", 7, 10), node("n2", 99, 5)],
            log: vec![
                log("n1", "true"),
                log("n1", "true"),
                log("n2", "yes"),
                Fetched::Unreadable {
                    identity: "wid=?".into(),
                    reason: "NULL wid".into(),
                },
            ],
        }
    }

    #[test]
    fn importing_twice_changes_nothing_the_second_time() {
        let store = Store::in_memory().unwrap();
        let mut issues = Vec::new();
        let first = import(&store, &mut source(), &mut |i| issues.push(i.clone())).unwrap();
        let c = |r: &Report, t: &str| *r.counts(t).unwrap();
        assert_eq!(
            (
                c(&first, "environments").inserted,
                c(&first, "environments").skipped
            ),
            (2, 1)
        );
        assert_eq!(
            (c(&first, "rights").inserted, c(&first, "rights").unchanged),
            (1, 1)
        );
        assert_eq!(
            (c(&first, "nodes").inserted, c(&first, "nodes").altered),
            (2, 1)
        );
        assert_eq!(
            (c(&first, "log").inserted, c(&first, "log").skipped),
            (2, 2)
        );
        assert_eq!(first.skipped(), 5);
        let reasons: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert!(
            reasons[0].starts_with("skipped: environments id=8 (alice/deb version 1): same user"),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("env_id 99 is not an imported environment"))
        );
        assert!(reasons.iter().any(|r| r.contains("success \"yes\"")));
        // Node n1's newest row names environment 8, a duplicate of 7: it points to 7's row.
        let nodes = store.nodes_get(&[]).unwrap();
        assert_eq!(
            (nodes["n1"].env_id, nodes["n1"].date, nodes["n2"].env_id),
            (7, 20, -1)
        );
        let second = import(&store, &mut source(), &mut |_| {}).unwrap();
        for t in crate::migrate::TABLES {
            let s = c(&second, t);
            assert_eq!((s.inserted, s.updated), (0, 0), "{t}: {s:?}");
            assert_eq!(s.read, c(&first, t).read);
        }
        assert_eq!(
            c(&second, "log").unchanged,
            2,
            "both identical rows are recognised"
        );
        assert_eq!(
            store
                .stats_csv(&Default::default())
                .unwrap()
                .lines()
                .count(),
            2
        );
    }

    #[test]
    fn a_source_failure_leaves_the_store_untouched() {
        struct Broken(Memory);
        impl LegacySource for Broken {
            fn environments(&mut self) -> Result<Rows<'_, LegacyEnv>, SourceError> {
                self.0.environments()
            }
            fn rights(&mut self) -> Result<Rows<'_, LegacyRight>, SourceError> {
                self.0.rights()
            }
            fn nodes(&mut self) -> Result<Rows<'_, LegacyNode>, SourceError> {
                Err(SourceError::Query {
                    table: "nodes",
                    message: "connection lost".into(),
                })
            }
            fn log(&mut self) -> Result<Rows<'_, LegacyLog>, SourceError> {
                self.0.log()
            }
        }
        let store = Store::in_memory().unwrap();
        let err = import(&store, &mut Broken(source()), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("connection lost"), "{err}");
        assert!(store.rights_get(None, &[]).unwrap().is_empty());
        assert!(store.env_by_id(7).unwrap().is_none());
    }
}
