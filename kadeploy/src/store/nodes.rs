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
    /// State rows of `hosts` (every row when empty).
    pub fn nodes_get(&self, hosts: &[String]) -> Result<BTreeMap<String, NodeRow>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT hostname, state, env_id, date, user FROM nodes ORDER BY hostname")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                NodeRow {
                    state: r.get(1)?,
                    env_id: r.get(2)?,
                    date: r.get(3)?,
                    user: r.get(4)?,
                },
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (h, n) = row?;
            if hosts.is_empty() || hosts.contains(&h) {
                out.insert(h, n);
            }
        }
        Ok(out)
    }

    /// Nodes among `hosts` busy in an operation (`%ing`) changed after `since` (epoch seconds).
    pub fn nodes_in_use(&self, hosts: &[String], since: i64) -> Result<Vec<String>> {
        Ok(self
            .nodes_get(hosts)?
            .into_iter()
            .filter(|(_, n)| n.state.ends_with("ing") && n.date > since)
            .map(|(h, _)| h)
            .collect())
    }

    /// Records a started workflow and replaces its nodes' rows with `state` (one transaction).
    pub fn workflow_begin(&self, w: &WorkflowRow, state: &str, env_id: i64) -> Result<()> {
        let now = now_epoch();
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO workflows (wid, kind, user, state, start, nodes) VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
                params![w.wid, w.kind, w.user, now, w.nodes.join(",")],
            )?;
            for h in &w.nodes {
                tx.execute(
                    "INSERT OR REPLACE INTO nodes (hostname, state, env_id, date, user) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![h, state, env_id, now, w.user],
                )?;
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
            for (h, s) in nodes {
                tx.execute(
                    "UPDATE nodes SET state = ?2, date = ?3 WHERE hostname = ?1",
                    params![h, s, now],
                )?;
            }
            for row in log {
                insert_log(tx, row)?;
            }
            Ok(())
        })
    }

    /// The recorded workflow `wid`.
    pub fn workflow_get(&self, wid: &str) -> Result<Option<WorkflowRow>> {
        let conn = self.conn();
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
