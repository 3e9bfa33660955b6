//! What an import did: counts per table and the rows it could not import (or imported only in part), each
//! with the row's identity and the reason.

use crate::store::Upsert;
use std::fmt;

/// The tables of a Kadeploy 3.3 database, in import order.
pub const TABLES: [&str; 4] = ["environments", "rights", "nodes", "log"];

/// Counts of one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounts {
    /// Rows read from the source.
    pub read: u64,
    /// Rows added to the store.
    pub inserted: u64,
    /// Stored rows that took the imported values.
    pub updated: u64,
    /// Rows already stored as they are.
    pub unchanged: u64,
    /// Rows not imported because the store holds a newer row for the same key (node states).
    pub kept: u64,
    /// Rows not imported (each one has an [`Issue`]).
    pub skipped: u64,
    /// Rows imported with a part dropped or changed (each one has an [`Issue`]).
    pub altered: u64,
}

impl TableCounts {
    /// Counts one write.
    pub fn count(&mut self, how: Upsert) {
        match how {
            Upsert::Inserted => self.inserted += 1,
            Upsert::Updated => self.updated += 1,
            Upsert::Unchanged => self.unchanged += 1,
            Upsert::KeptNewer => self.kept += 1,
        }
    }
}

/// A row that could not be imported as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Its table.
    pub table: &'static str,
    /// The row (its key columns).
    pub identity: String,
    /// Why, and what was done.
    pub reason: String,
    /// The row was left out (otherwise it was imported with a change).
    pub skipped: bool,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.skipped { "skipped" } else { "altered" };
        write!(
            f,
            "{what}: {} {}: {}",
            self.table, self.identity, self.reason
        )
    }
}

/// The result of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Counts, in the order of [`TABLES`].
    pub tables: [TableCounts; 4],
}

impl Report {
    /// The counts of `table` (one of [`TABLES`]).
    pub fn counts(&self, table: &str) -> Option<&TableCounts> {
        TABLES
            .iter()
            .position(|t| *t == table)
            .and_then(|i| self.tables.get(i))
    }

    /// Rows left out, over every table.
    pub fn skipped(&self) -> u64 {
        self.tables.iter().map(|t| t.skipped).sum()
    }

    /// Rows imported with a change, over every table.
    pub fn altered(&self) -> u64 {
        self.tables.iter().map(|t| t.altered).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "table", "read", "inserted", "updated", "unchanged", "kept", "skipped", "altered"
        )?;
        for (name, c) in TABLES.iter().zip(&self.tables) {
            writeln!(
                f,
                "{name:<13} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                c.read, c.inserted, c.updated, c.unchanged, c.kept, c.skipped, c.altered
            )?;
        }
        Ok(())
    }
}
