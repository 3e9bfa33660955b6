//! Leases, kept in memory and journaled to a file (one JSON line per change, compacted at start) so a
//! restart of the server loses none. A torn last line (crash mid-write) is skipped.

use super::config::Mac;
use crate::netboot::atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use tracing::warn;

/// One lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The client.
    pub mac: Mac,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Host name given to it, if any.
    pub hostname: Option<String>,
    /// End of the lease, in seconds since the Unix epoch.
    pub expires: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Entry {
    Set(Lease),
    Del { mac: Mac },
}

/// The lease table.
#[derive(Debug, Default)]
pub struct Leases {
    path: Option<PathBuf>,
    journal: Option<File>,
    by_mac: BTreeMap<Mac, Lease>,
    by_ip: BTreeMap<Ipv4Addr, Mac>,
    entries: usize,
}

impl Leases {
    /// An in-memory table (no persistence).
    pub fn in_memory() -> Self {
        Leases::default()
    }

    /// Opens the journal at `path`, replays it, and rewrites it compacted.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut table = Leases::in_memory();
        match File::open(path) {
            Ok(f) => {
                for (i, line) in BufReader::new(f).lines().enumerate() {
                    let line = line?;
                    match serde_json::from_str::<Entry>(&line) {
                        Ok(Entry::Set(l)) => table.insert(l),
                        Ok(Entry::Del { mac }) => table.remove(mac),
                        Err(e) => {
                            warn!(file = %path.display(), line = i + 1, error = %e, "skipping lease line")
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        table.path = Some(path.to_path_buf());
        table.compact()?;
        Ok(table)
    }

    fn insert(&mut self, lease: Lease) {
        if let Some(old) = self.by_mac.get(&lease.mac) {
            self.by_ip.remove(&old.ip);
        }
        if let Some(other) = self.by_ip.insert(lease.ip, lease.mac)
            && other != lease.mac
        {
            self.by_mac.remove(&other);
        }
        self.by_mac.insert(lease.mac, lease);
    }

    fn remove(&mut self, mac: Mac) {
        if let Some(old) = self.by_mac.remove(&mac) {
            self.by_ip.remove(&old.ip);
        }
    }

    fn compact(&mut self) -> io::Result<()> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let mut text = String::new();
        for lease in self.by_mac.values() {
            text.push_str(
                &serde_json::to_string(&Entry::Set(lease.clone())).map_err(io::Error::other)?,
            );
            text.push('\n');
        }
        atomic::write(&path, text.as_bytes(), true)?;
        self.journal = Some(OpenOptions::new().append(true).open(&path)?);
        self.entries = self.by_mac.len();
        Ok(())
    }

    fn append(&mut self, entry: &Entry) -> io::Result<()> {
        if let Some(journal) = &mut self.journal {
            let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
            line.push(b'\n');
            journal.write_all(&line)?;
            self.entries += 1;
            if self.entries > 1024 && self.entries > 4 * self.by_mac.len() {
                self.compact()?;
            }
        }
        Ok(())
    }

    /// The lease of `mac`.
    pub fn get(&self, mac: Mac) -> Option<&Lease> {
        self.by_mac.get(&mac)
    }

    /// Who holds `ip`.
    pub fn holder(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip).and_then(|m| self.by_mac.get(m))
    }

    /// Records `lease` (replacing the client's previous one), durably in the journal.
    pub fn commit(&mut self, lease: Lease) -> io::Result<()> {
        if self.by_mac.get(&lease.mac) == Some(&lease) {
            return Ok(());
        }
        self.insert(lease.clone());
        self.append(&Entry::Set(lease))
    }

    /// Forgets the lease of `mac`.
    pub fn release(&mut self, mac: Mac) -> io::Result<()> {
        if self.by_mac.contains_key(&mac) {
            self.remove(mac);
            self.append(&Entry::Del { mac })?;
        }
        Ok(())
    }

    /// Every lease, by MAC.
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_mac.values()
    }

    /// Number of leases.
    pub fn len(&self) -> usize {
        self.by_mac.len()
    }

    /// True without leases.
    pub fn is_empty(&self) -> bool {
        self.by_mac.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(i: u8, ip: u8) -> Lease {
        Lease {
            mac: Mac([2, 0, 0, 0, 0, i]),
            ip: Ipv4Addr::new(10, 0, 0, ip),
            hostname: None,
            expires: 99,
        }
    }

    #[test]
    fn survives_reopen_and_torn_lines() {
        let path = std::env::temp_dir().join(format!("hal-leases-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            let mut t = Leases::open(&path).unwrap();
            t.commit(lease(1, 10)).unwrap();
            t.commit(lease(2, 11)).unwrap();
            t.commit(lease(3, 12)).unwrap();
            t.release(Mac([2, 0, 0, 0, 0, 2])).unwrap();
            t.commit(lease(1, 13)).unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"op\":\"set\",\"mac\":\"02:00").unwrap();
        drop(f);
        let t = Leases::open(&path).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.get(Mac([2, 0, 0, 0, 0, 1])).unwrap().ip,
            Ipv4Addr::new(10, 0, 0, 13)
        );
        assert!(t.holder(Ipv4Addr::new(10, 0, 0, 10)).is_none());
        assert_eq!(
            t.holder(Ipv4Addr::new(10, 0, 0, 12)).unwrap().mac,
            Mac([2, 0, 0, 0, 0, 3])
        );
        std::fs::remove_file(&path).unwrap();
    }
}
