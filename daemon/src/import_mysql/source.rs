//! A Kadeploy 3.3 MySQL/MariaDB database as a [`LegacySource`]: the schema checked first, then each table
//! streamed row by row (text protocol), every cell decoded without trusting the server.

use kadeploy_server::migrate::{
    Fetched, LegacyEnv, LegacyLog, LegacyNode, LegacyRight, LegacySource, Rows, SourceError,
};
use kadeploy_server::store::ENV_COLUMNS;
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, Row, Value};
use std::collections::BTreeMap;

/// The columns each table must have besides the environments' (spec §9, after `db/update-3.1.7.sql` and
/// `db/update-3.2.sql`); the environments have `id` and the columns our store keeps ([`ENV_COLUMNS`]).
const SCHEMA: [(&str, &[&str]); 3] = [
    ("rights", &["user", "node", "part"]),
    ("nodes", &["hostname", "state", "env_id", "date", "user"]),
    (
        "log",
        &[
            "wid",
            "hostname",
            "step1",
            "step2",
            "step3",
            "timeout_step1",
            "timeout_step2",
            "timeout_step3",
            "retry_step1",
            "retry_step2",
            "retry_step3",
            "start",
            "step1_duration",
            "step2_duration",
            "step3_duration",
            "env",
            "anonymous_env",
            "md5",
            "success",
            "error",
            "user",
        ],
    ),
];

/// Every table this import reads, with the columns it must have, in the order rows are read.
fn schema() -> impl Iterator<Item = (&'static str, Vec<&'static str>)> {
    let environments = std::iter::once("id").chain(ENV_COLUMNS).collect();
    std::iter::once(("environments", environments))
        .chain(SCHEMA.iter().map(|(t, c)| (*t, c.to_vec())))
}

/// The columns of `table` as [`schema`] lists them, joined for a SELECT (backquoted: `user` is a keyword).
fn select(table: &str) -> String {
    let columns = schema()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| c.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>())
        .unwrap_or_default();
    format!("SELECT {} FROM `{table}`", columns.join(", "))
}

/// An open connection to a Kadeploy 3.3 database whose schema was checked.
pub struct MysqlSource {
    conn: Conn,
}

impl MysqlSource {
    /// Connects with `opts` and checks that the database has Kadeploy 3.3's four tables and columns.
    pub fn connect(opts: Opts) -> Result<MysqlSource, SourceError> {
        let mut conn = Conn::new(opts).map_err(|e| SourceError::Connect(e.to_string()))?;
        check_schema(&mut conn)?;
        Ok(MysqlSource { conn })
    }

    /// Streams the rows of `sql`, decoding each one with `decode`.
    fn rows<T: 'static>(
        &mut self,
        table: &'static str,
        sql: String,
        decode: fn(Cells) -> Fetched<T>,
    ) -> Result<Rows<'_, T>, SourceError> {
        let query = move |e: mysql::Error| SourceError::Query {
            table,
            message: e.to_string(),
        };
        let result = self.conn.query_iter(sql).map_err(query)?;
        Ok(Box::new(result.map(move |row| {
            row.map(|r| decode(Cells::new(r))).map_err(query)
        })))
    }
}

/// Fails unless every table and column of [`schema`] exists in the connection's database.
fn check_schema(conn: &mut Conn) -> Result<(), SourceError> {
    let query = |e: mysql::Error| SourceError::Query {
        table: "information_schema.columns",
        message: e.to_string(),
    };
    let db: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .map_err(query)?
        .flatten();
    if db.is_none() {
        return Err(SourceError::Schema(
            "the URL names no database (mysql://user@host/DATABASE)".into(),
        ));
    }
    let found: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME IN ('environments', 'rights', 'nodes', 'log')",
        )
        .map_err(query)?;
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, c) in found {
        tables
            .entry(t.to_ascii_lowercase())
            .or_default()
            .push(c.to_ascii_lowercase());
    }
    let mut problems = Vec::new();
    for (table, columns) in schema() {
        let Some(have) = tables.get(table) else {
            problems.push(format!("table {table} is missing"));
            continue;
        };
        let missing: Vec<&str> = columns
            .iter()
            .copied()
            .filter(|c| !have.iter().any(|h| h == c))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("table {table} lacks {}", missing.join(", ")));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(SourceError::Schema(format!(
        "not a Kadeploy 3.3 database ({}); an older Kadeploy database must first be upgraded with \
         Kadeploy's db/update-3.1.7.sql and db/update-3.2.sql",
        problems.join("; ")
    )))
}

/// The cells of one row, decoded one by one; what cannot be decoded is noted, not fatal.
pub struct Cells {
    row: Row,
    problems: Vec<String>,
}

impl Cells {
    fn new(row: Row) -> Cells {
        Cells {
            row,
            problems: Vec::new(),
        }
    }

    fn value(&mut self, i: usize) -> Value {
        self.row.take::<Value, usize>(i).unwrap_or(Value::NULL)
    }

    /// A text cell that may be NULL.
    fn opt_text(&mut self, i: usize, column: &str) -> Option<String> {
        match self.value(i) {
            Value::NULL => None,
            Value::Bytes(b) => match String::from_utf8(b) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.problems.push(format!("{column} is not UTF-8"));
                    Some(String::from_utf8_lossy(e.as_bytes()).into_owned())
                }
            },
            Value::Int(n) => Some(n.to_string()),
            Value::UInt(n) => Some(n.to_string()),
            _ => {
                self.problems.push(format!("{column} is not text"));
                None
            }
        }
    }

    /// A text cell that Kadeploy never leaves NULL.
    fn text(&mut self, i: usize, column: &str) -> String {
        self.opt_text(i, column).unwrap_or_else(|| {
            self.problems.push(format!("{column} is NULL"));
            String::new()
        })
    }

    /// An integer cell that Kadeploy never leaves NULL.
    fn int(&mut self, i: usize, column: &str) -> i64 {
        let n = match self.value(i) {
            Value::Int(n) => Some(n),
            Value::UInt(n) => i64::try_from(n).ok(),
            Value::Bytes(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok()),
            _ => None,
        };
        n.unwrap_or_else(|| {
            self.problems.push(format!("{column} is not an integer"));
            0
        })
    }

    /// An unsigned 32-bit cell (ids, versions).
    fn u32(&mut self, i: usize, column: &str) -> u32 {
        let n = self.int(i, column);
        u32::try_from(n).unwrap_or_else(|_| {
            self.problems.push(format!("{column} {n} is out of range"));
            0
        })
    }

    /// The row, or why it cannot be read, named by `identity`.
    fn finish<T>(self, row: T, identity: impl FnOnce(&T) -> String) -> Fetched<T> {
        if self.problems.is_empty() {
            Fetched::Row(row)
        } else {
            Fetched::Unreadable {
                identity: identity(&row),
                reason: self.problems.join("; "),
            }
        }
    }
}

fn decode_env(mut c: Cells) -> Fetched<LegacyEnv> {
    let row = LegacyEnv {
        id: c.u32(0, "id"),
        name: c.text(1, "name"),
        version: c.u32(2, "version"),
        description: c.opt_text(3, "description"),
        author: c.text(4, "author"),
        tarball: c.text(5, "tarball"),
        preinstall: c.text(6, "preinstall"),
        postinstall: c.text(7, "postinstall"),
        hypervisor: c.text(8, "hypervisor"),
        hypervisor_params: c.text(9, "hypervisor_params"),
        initrd: c.text(10, "initrd"),
        kernel: c.text(11, "kernel"),
        kernel_params: c.text(12, "kernel_params"),
        fdisk_type: c.opt_text(13, "fdisk_type"),
        filesystem: c.opt_text(14, "filesystem"),
        user: c.opt_text(15, "user"),
        allowed_users: c.text(16, "allowed_users"),
        environment_kind: c.text(17, "environment_kind"),
        visibility: c.text(18, "visibility"),
        demolishing_env: c.int(19, "demolishing_env"),
        multipart: c.int(20, "multipart"),
        options: c.opt_text(21, "options"),
    };
    c.finish(row, LegacyEnv::identity)
}

fn decode_right(mut c: Cells) -> Fetched<LegacyRight> {
    let row = LegacyRight {
        user: c.text(0, "user"),
        node: c.text(1, "node"),
        part: c.text(2, "part"),
    };
    c.finish(row, LegacyRight::identity)
}

fn decode_node(mut c: Cells) -> Fetched<LegacyNode> {
    let row = LegacyNode {
        hostname: c.text(0, "hostname"),
        state: c.text(1, "state"),
        env_id: c.int(2, "env_id"),
        date: c.int(3, "date"),
        user: c.text(4, "user"),
    };
    c.finish(row, LegacyNode::identity)
}

fn decode_log(mut c: Cells) -> Fetched<LegacyLog> {
    let row = LegacyLog {
        wid: c.text(0, "wid"),
        hostname: c.text(1, "hostname"),
        steps: [c.text(2, "step1"), c.text(3, "step2"), c.text(4, "step3")],
        timeouts: [
            c.int(5, "timeout_step1"),
            c.int(6, "timeout_step2"),
            c.int(7, "timeout_step3"),
        ],
        retries: [
            c.int(8, "retry_step1"),
            c.int(9, "retry_step2"),
            c.int(10, "retry_step3"),
        ],
        start: c.int(11, "start"),
        durations: [
            c.int(12, "step1_duration"),
            c.int(13, "step2_duration"),
            c.int(14, "step3_duration"),
        ],
        env: c.text(15, "env"),
        anonymous_env: c.text(16, "anonymous_env"),
        md5: c.text(17, "md5"),
        success: c.text(18, "success"),
        error: c.text(19, "error"),
        user: c.text(20, "user"),
    };
    c.finish(row, LegacyLog::identity)
}

impl LegacySource for MysqlSource {
    fn environments(&mut self) -> Result<Rows<'_, LegacyEnv>, SourceError> {
        let sql = format!("{} ORDER BY `id`", select("environments"));
        self.rows("environments", sql, decode_env)
    }

    fn rights(&mut self) -> Result<Rows<'_, LegacyRight>, SourceError> {
        self.rows("rights", select("rights"), decode_right)
    }

    fn nodes(&mut self) -> Result<Rows<'_, LegacyNode>, SourceError> {
        // Byte order groups host names that differ only in case apart, as our store does.
        let sql = format!(
            "{} ORDER BY BINARY `hostname`, `date` DESC, BINARY `state`, BINARY `user`, `env_id`",
            select("nodes")
        );
        self.rows("nodes", sql, decode_node)
    }

    fn log(&mut self) -> Result<Rows<'_, LegacyLog>, SourceError> {
        let sql = format!("{} ORDER BY BINARY `wid`", select("log"));
        self.rows("log", sql, decode_log)
    }
}
