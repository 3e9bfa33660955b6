//! The `nodes` table (one state row per node, spec §5.9) and the `workflows` table that lets a restarted
//! server record the workflows it was running as aborted.

use super::log::{LogRow, insert_log};
use super::{Result, Store, now_epoch};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

/// A node's state row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    /// `deploying`, `deployed`, `deploy_failed`, `aborted`, ...
    pub state: String,
    /// Environment id, -1 for none or anonymous.
    pub env_id: i64,
    /// Epoch seconds of the last change.
    pub date: i64,
    /// Who did it.
    pub user: String,
}

/// A workflow as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowRow {
    /// `D-…`, `R-…`, `P-…`.
    pub wid: String,
    /// `deploy`, `reboot` or `power`.
    pub kind: String,
    /// Owner.
    pub user: String,
    /// `running`, `done`, `error` or `aborted`.
    pub state: String,
    /// Nodes.
    pub nodes: Vec<String>,
}

impl Store {
    /// State rows of `hosts` (every row when empty); a host without a row is absent from the map.
    ///
    /// Named hosts are looked up one by one through the primary key (a cached statement), so the cost
    /// follows `hosts`, not the size of the table.
    pub fn nodes_get(&self, hosts: &[String]) -> Result<BTreeMap<String, NodeRow>> {
        let row_of = |r: &rusqlite::Row<'_>| {
            Ok((
                r.get::<_, String>(0)?,
                NodeRow {
                    state: r.get(1)?,
                    env_id: r.get(2)?,
                    date: r.get(3)?,
                    user: r.get(4)?,
                },
            ))
        };
        self.read(|conn| {
            let mut out = BTreeMap::new();
            if hosts.is_empty() {
                let mut stmt = conn.prepare_cached(
                    "SELECT hostname, state, env_id, date, user FROM nodes ORDER BY hostname",
                )?;
                for row in stmt.query_map([], row_of)? {
                    let (h, n) = row?;
                    out.insert(h, n);
                }
                return Ok(out);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT hostname, state, env_id, date, user FROM nodes WHERE hostname = ?1",
            )?;
            for h in hosts {
                if let Some((h, n)) = stmt.query_row([h], row_of).optional()? {
                    out.insert(h, n);
                }
            }
            Ok(out)
        })
    }

    /// Nodes among `hosts` busy in an operation (`%ing`) changed after `since` (epoch seconds), sorted.
    pub fn nodes_in_use(&self, hosts: &[String], since: i64) -> Result<Vec<String>> {
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT hostname FROM nodes WHERE hostname = ?1 AND state LIKE '%ing' AND date > ?2",
            )?;
            let mut out = Vec::new();
            for h in hosts {
                if let Some(h) = stmt
                    .query_row(params![h, since], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    out.push(h);
                }
            }
            Ok(out)
        })?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Records a started workflow and replaces its nodes' rows with `state` (one transaction).
    pub fn workflow_begin(&self, w: &WorkflowRow, state: &str, env_id: i64) -> Result<()> {
        let now = now_epoch();
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO workflows (wid, kind, user, state, start, nodes) VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
                params![w.wid, w.kind, w.user, now, w.nodes.join(",")],
            )?;
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO nodes (hostname, state, env_id, date, user) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for h in &w.nodes {
                stmt.execute(params![h, state, env_id, now, w.user])?;
            }
            Ok(())
        })
    }

    /// Records the end of workflow `wid`: its final state, each node's state, and the log rows, atomically.
    pub fn workflow_end(
        &self,
        wid: &str,
        state: &str,
        nodes: &[(String, String)],
        log: &[LogRow],
    ) -> Result<()> {
        let now = now_epoch();
        self.transaction(|tx| {
            tx.execute(
                "UPDATE workflows SET state = ?2, end = ?3 WHERE wid = ?1",
                params![wid, state, now],
            )?;
            let mut stmt =
                tx.prepare_cached("UPDATE nodes SET state = ?2, date = ?3 WHERE hostname = ?1")?;
            for (h, s) in nodes {
                stmt.execute(params![h, s, now])?;
            }
            for row in log {
                insert_log(tx, row)?;
            }
            Ok(())
        })
    }

    /// The recorded workflow `wid`.
    pub fn workflow_get(&self, wid: &str) -> Result<Option<WorkflowRow>> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT wid, kind, user, state, nodes FROM workflows WHERE wid = ?1",
                    [wid],
                    |r| {
                        let nodes: String = r.get(4)?;
                        Ok(WorkflowRow {
                            wid: r.get(0)?,
                            kind: r.get(1)?,
                            user: r.get(2)?,
                            state: r.get(3)?,
                            nodes: nodes
                                .split(',')
                                .filter(|s| !s.is_empty())
                                .map(Into::into)
                                .collect(),
                        })
                    },
                )
                .optional()?)
        })
    }

    /// At start-up: every workflow still `running` (the previous server died) becomes `aborted`, its nodes
    /// still in a `%ing` state become `aborted`, and a failed log row is written per node. Returns the wids.
    pub fn recover(&self) -> Result<Vec<String>> {
        let now = now_epoch();
        self.transaction(|tx| {
            let mut running: Vec<(String, String, String, i64)> = Vec::new();
            {
                let mut stmt = tx.prepare("SELECT wid, user, nodes, start FROM workflows WHERE state = 'running'")?;
                for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))? {
                    running.push(row?);
                }
            }
            for (wid, user, nodes, start) in &running {
                tx.execute("UPDATE workflows SET state = 'aborted', end = ?2 WHERE wid = ?1", params![wid, now])?;
                for h in nodes.split(',').filter(|s| !s.is_empty()) {
                    tx.execute(
                        "UPDATE nodes SET state = 'aborted', date = ?2 WHERE hostname = ?1 AND state LIKE '%ing'",
                        params![h, now],
                    )?;
                    let mut row = LogRow::new(wid, h, user, *start);
                    row.error = "Aborted: the server stopped during the operation".into();
                    insert_log(tx, &row)?;
                }
            }
            Ok(running.into_iter().map(|r| r.0).collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_lookups_return_only_known_rows() {
        let s = Store::in_memory().unwrap();
        let w = WorkflowRow {
            wid: "D-2".into(),
            kind: "deploy".into(),
            user: "bob".into(),
            state: "running".into(),
            nodes: vec!["b".into(), "a".into()],
        };
        s.workflow_begin(&w, "deploying", -1).unwrap();
        let hosts = ["a".to_string(), "zz".to_string()];
        let rows = s.nodes_get(&hosts).unwrap();
        assert_eq!(rows.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(rows["a"].state, "deploying");
        assert_eq!(s.nodes_get(&[]).unwrap().len(), 2);
        let all = ["zz".to_string(), "b".to_string(), "a".to_string()];
        assert_eq!(s.nodes_in_use(&all, 0).unwrap(), ["a", "b"]);
        assert!(s.nodes_in_use(&all, now_epoch() + 10).unwrap().is_empty());
        s.workflow_end("D-2", "done", &[("a".into(), "deployed".into())], &[])
            .unwrap();
        assert_eq!(s.nodes_in_use(&all, 0).unwrap(), ["b"]);
    }

    #[test]
    fn recover_aborts_running_workflows() {
        let dir = std::env::temp_dir().join(format!("kadeploy-store-{}", std::process::id()));
        let path = dir.join("k.sqlite");
        let _ = std::fs::remove_file(&path);
        {
            let s = Store::open(&path).unwrap();
            let w = WorkflowRow {
                wid: "D-1".into(),
                kind: "deploy".into(),
                user: "alice".into(),
                state: "running".into(),
                nodes: vec!["n1".into(), "n2".into()],
            };
            s.workflow_begin(&w, "deploying", 3).unwrap();
            assert_eq!(s.nodes_in_use(&w.nodes, 0).unwrap().len(), 2);
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.recover().unwrap(), ["D-1"]);
        let nodes = s.nodes_get(&[]).unwrap();
        assert!(
            nodes
                .values()
                .all(|n| n.state == "aborted" && n.env_id == 3)
        );
        assert_eq!(s.workflow_get("D-1").unwrap().unwrap().state, "aborted");
        assert!(s.recover().unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
