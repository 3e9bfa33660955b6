//! The `log` table: one row per node per workflow with Kadeploy's kastat fields, and the `/stats` queries
//! (CSV of chosen fields, per-node failure rates; spec §3.12).

use super::{Result, Store};
use rusqlite::{Transaction, params, types::Value as SqlValue};
use std::collections::BTreeMap;

pub use kadeploy::wire::STAT_FIELDS;

/// One `log` row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRow {
    /// Workflow id.
    pub wid: String,
    /// Node.
    pub hostname: String,
    /// Implementation of each macro-step slot (`Simple`, `On`... for reboot/power).
    pub steps: [String; 3],
    /// Timeout of each slot, seconds.
    pub timeouts: [i64; 3],
    /// Retries of each slot.
    pub retries: [i64; 3],
    /// Epoch seconds at start.
    pub start: i64,
    /// Seconds in each slot.
    pub durations: [i64; 3],
    /// `name:version` or empty.
    pub env: String,
    /// The environment was anonymous.
    pub anonymous_env: bool,
    /// Checksum of the environment's image (empty when not known).
    pub md5: String,
    /// The node ended OK.
    pub success: bool,
    /// `<macro>-<micro>: <message>` for KO nodes.
    pub error: String,
    /// Who ran it.
    pub user: String,
}

impl LogRow {
    /// A failed row with empty steps.
    pub fn new(wid: &str, hostname: &str, user: &str, start: i64) -> Self {
        LogRow {
            wid: wid.into(),
            hostname: hostname.into(),
            user: user.into(),
            start,
            ..Default::default()
        }
    }
}

/// Inserts one row inside `tx`.
pub(crate) fn insert_log(tx: &Transaction<'_>, r: &LogRow) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "INSERT INTO log (wid, hostname, step1, step2, step3, timeout_step1, timeout_step2, timeout_step3,
         retry_step1, retry_step2, retry_step3, start, step1_duration, step2_duration, step3_duration, env,
         anonymous_env, md5, success, error, user)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    )?
    .execute(params![
        r.wid, r.hostname, r.steps[0], r.steps[1], r.steps[2], r.timeouts[0], r.timeouts[1], r.timeouts[2],
        r.retries[0], r.retries[1], r.retries[2], r.start, r.durations[0], r.durations[1], r.durations[2], r.env,
        r.anonymous_env.to_string(), r.md5, r.success.to_string(), r.error, r.user
    ])
}

/// A `/stats` query.
#[derive(Clone, Debug, Default)]
pub struct StatsQuery {
    /// `D`, `R` or `P`: the operation path segment.
    pub op_prefix: Option<char>,
    /// Nodes (all when empty).
    pub nodes: Vec<String>,
    /// Fields (validated against [`STAT_FIELDS`]; all when empty).
    pub fields: Vec<String>,
    /// Sort fields (default `start`).
    pub sort: Vec<String>,
    /// `LIMIT`.
    pub limit: Option<u64>,
    /// One workflow.
    pub wid: Option<String>,
    /// `start >= date_min`.
    pub date_min: Option<i64>,
    /// `start <= date_max`.
    pub date_max: Option<i64>,
    /// Minimum retries.
    pub min_retries: Option<i64>,
    /// Steps the minimum applies to (any of the three when empty).
    pub step_retries: Vec<u8>,
}

impl StatsQuery {
    fn where_clause(&self) -> (String, Vec<SqlValue>) {
        let mut conds = vec!["1 = 1".to_string()];
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(p) = self.op_prefix {
            conds.push("wid LIKE ?".into());
            args.push(SqlValue::Text(format!("{p}-%")));
        }
        if !self.nodes.is_empty() {
            conds.push(format!(
                "hostname IN ({})",
                vec!["?"; self.nodes.len()].join(",")
            ));
            args.extend(self.nodes.iter().map(|n| SqlValue::Text(n.clone())));
        }
        if let Some(w) = &self.wid {
            conds.push("wid = ?".into());
            args.push(SqlValue::Text(w.clone()));
        }
        if let Some(d) = self.date_min {
            conds.push("start >= ?".into());
            args.push(SqlValue::Integer(d));
        }
        if let Some(d) = self.date_max {
            conds.push("start <= ?".into());
            args.push(SqlValue::Integer(d));
        }
        if let Some(n) = self.min_retries {
            let steps: Vec<u8> = if self.step_retries.is_empty() {
                vec![1, 2, 3]
            } else {
                self.step_retries.clone()
            };
            let joiner = if self.step_retries.is_empty() {
                " OR "
            } else {
                " AND "
            };
            let c: Vec<String> = steps
                .iter()
                .map(|s| format!("retry_step{s} >= {n}"))
                .collect();
            conds.push(format!("({})", c.join(joiner)));
        }
        (conds.join(" AND "), args)
    }
}

impl Store {
    /// `kind=all`: one CSV line per row with the query's fields, newline-terminated.
    pub fn stats_csv(&self, q: &StatsQuery) -> Result<String> {
        let fields: Vec<&str> = if q.fields.is_empty() {
            STAT_FIELDS.to_vec()
        } else {
            q.fields
                .iter()
                .filter_map(|f| STAT_FIELDS.iter().find(|s| **s == f).copied())
                .collect()
        };
        let sort: Vec<&str> = q
            .sort
            .iter()
            .filter_map(|f| STAT_FIELDS.iter().find(|s| **s == f).copied())
            .collect();
        let sort = if sort.is_empty() {
            "start".to_string()
        } else {
            sort.join(", ")
        };
        let (cond, args) = q.where_clause();
        let limit = q.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let sql = format!(
            "SELECT {} FROM log WHERE {cond} ORDER BY {sort}{limit}",
            fields.join(", ")
        );
        self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            let mut out = String::new();
            while let Some(row) = rows.next()? {
                let cols: Vec<String> = (0..fields.len())
                    .map(|i| match row.get::<_, SqlValue>(i) {
                        Ok(SqlValue::Integer(n)) => n.to_string(),
                        Ok(SqlValue::Text(s)) => s,
                        Ok(SqlValue::Real(f)) => f.to_string(),
                        _ => String::new(),
                    })
                    .collect();
                out.push_str(&cols.join(","));
                out.push('\n');
            }
            Ok(out)
        })
    }

    /// `kind=failure_rates`: per host `1 - successes/total`, rounded to 3 decimals, at least `min`.
    pub fn failure_rates(&self, q: &StatsQuery, min: Option<f64>) -> Result<BTreeMap<String, f64>> {
        let (cond, args) = q.where_clause();
        let sql = format!(
            "SELECT hostname, SUM(CASE WHEN success = 'true' THEN 1 ELSE 0 END), COUNT(*) FROM log WHERE {cond} GROUP BY hostname"
        );
        let rows = self.read(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut out = BTreeMap::new();
        for (h, ok, total) in rows {
            let rate = ((1.0 - ok as f64 / total.max(1) as f64) * 1000.0).round() / 1000.0;
            if min.is_none_or(|m| rate >= m) {
                out.insert(h, rate);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_failure_rates() {
        let s = Store::in_memory().unwrap();
        let mut a = LogRow::new("D-1", "n1", "alice", 100);
        a.success = true;
        a.steps = [
            "SetDeploymentEnvUntrusted".into(),
            "BroadcastEnvChain".into(),
            "BootNewEnvKexec".into(),
        ];
        a.retries = [0, 2, 0];
        let b = LogRow::new("D-1", "n2", "alice", 100);
        let c = LogRow::new("R-2", "n1", "alice", 200);
        s.transaction(|tx| {
            for r in [&a, &b, &c] {
                insert_log(tx, r)?;
            }
            Ok(())
        })
        .unwrap();
        let q = StatsQuery {
            op_prefix: Some('D'),
            fields: vec!["hostname".into(), "success".into()],
            ..Default::default()
        };
        assert_eq!(s.stats_csv(&q).unwrap(), "n1,true\nn2,false\n");
        let all = s
            .stats_csv(&StatsQuery {
                wid: Some("D-1".into()),
                limit: Some(1),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.trim_end().split(',').count(), 20);
        let q = StatsQuery {
            min_retries: Some(2),
            step_retries: vec![2],
            fields: vec!["hostname".into()],
            ..Default::default()
        };
        assert_eq!(s.stats_csv(&q).unwrap(), "n1\n");
        let rates = s.failure_rates(&StatsQuery::default(), Some(0.5)).unwrap();
        assert_eq!(rates.get("n1"), Some(&0.5));
        assert_eq!(rates.get("n2"), Some(&1.0));
    }
}
