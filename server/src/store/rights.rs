//! The `rights` table: (user, node, partition) triples with `*` wildcards, Kadeploy's `granted?`, and the
//! add/delete rules of `karights3` (spec §3.10, §10).

use super::{Result, Store, api};
use kadeploy::error::ApiError;
use rusqlite::params;
use std::collections::BTreeMap;

/// Rights as the API shows them: user → node (or `*`) → partitions (or `*`).
pub type Rights = BTreeMap<String, BTreeMap<String, Vec<String>>>;

impl Store {
    /// Rights of `user` (every user when `None`), restricted to `nodes` when not empty.
    pub fn rights_get(&self, user: Option<&str>, nodes: &[String]) -> Result<Rights> {
        let rows = self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT user, node, part FROM rights WHERE (?1 IS NULL OR user = ?1) ORDER BY user, node, part",
            )?;
            let rows = stmt
                .query_map(params![user], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut out = Rights::new();
        for (u, n, p) in rows {
            if nodes.is_empty() || n == "*" || nodes.contains(&n) {
                out.entry(u).or_default().entry(n).or_default().push(p);
            }
        }
        Ok(out)
    }

    /// Kadeploy's `granted?`: `user` holds a right on every node of `nodes` covering `part`
    /// (any partition when `part` is empty).
    pub fn granted(&self, user: &str, nodes: &[String], part: &str) -> Result<bool> {
        let rights = self.rights_get(Some(user), nodes)?;
        let Some(mine) = rights.get(user) else {
            return Ok(nodes.is_empty());
        };
        let covers =
            |parts: &Vec<String>| part.is_empty() || parts.iter().any(|p| p == "*" || p == part);
        Ok(nodes
            .iter()
            .all(|n| mine.get("*").is_some_and(covers) || mine.get(n.as_str()).is_some_and(covers)))
    }

    /// `POST /rights`: gives `user` the `parts` on `nodes` (`*` for all); returns what was added.
    ///
    /// Other non-almighty users' rights on these nodes are error 11 unless `overwrite`, which deletes them.
    pub fn rights_add(
        &self,
        user: &str,
        nodes: &[String],
        parts: &[String],
        overwrite: bool,
        almighty: &[String],
    ) -> Result<Rights> {
        let star = vec!["*".to_string()];
        let nodes = if nodes.is_empty() { &star } else { nodes };
        let parts = if parts.is_empty() { &star } else { parts };
        self.transaction(|tx| {
            let mut others: Vec<(String, String)> = Vec::new();
            {
                let mut stmt =
                    tx.prepare("SELECT DISTINCT user, node FROM rights WHERE user != ?1")?;
                let rows = stmt.query_map([user], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (u, n) = row?;
                    let hit = n == "*" || nodes.iter().any(|m| m == "*" || *m == n);
                    if hit && !almighty.contains(&u) {
                        others.push((u, n));
                    }
                }
            }
            if !others.is_empty() {
                if !overwrite {
                    let who = others
                        .iter()
                        .map(|(u, n)| format!("{u} on {n}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(api(
                        ApiError::ConflictingElements,
                        format!("Some rights are already set for user {who}"),
                    ));
                }
                for (u, n) in &others {
                    tx.execute(
                        "DELETE FROM rights WHERE user = ?1 AND node = ?2",
                        params![u, n],
                    )?;
                }
            }
            let mut added = Rights::new();
            for n in nodes {
                if parts.iter().any(|p| p == "*") {
                    tx.execute(
                        "DELETE FROM rights WHERE user = ?1 AND node = ?2 AND part != '*'",
                        params![user, n],
                    )?;
                }
                for p in parts {
                    let n_added = tx.execute(
                        "INSERT OR IGNORE INTO rights (user, node, part) VALUES (?1, ?2, ?3)",
                        params![user, n, p],
                    )?;
                    if n_added > 0 {
                        added
                            .entry(user.to_string())
                            .or_default()
                            .entry(n.clone())
                            .or_default()
                            .push(p.clone());
                    }
                }
            }
            if added.is_empty() {
                return Err(api(
                    ApiError::NothingModified,
                    format!("No rights added for the user {user}"),
                ));
            }
            Ok(added)
        })
    }

    /// `DELETE /rights/<user>`: removes `parts` (all when empty) of `user` on `nodes` (all when empty).
    pub fn rights_delete(&self, user: &str, nodes: &[String], parts: &[String]) -> Result<Rights> {
        self.transaction(|tx| {
            let mut rows: Vec<(String, String)> = Vec::new();
            {
                let mut stmt = tx.prepare("SELECT node, part FROM rights WHERE user = ?1 ORDER BY node, part")?;
                for row in stmt.query_map([user], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                    rows.push(row?);
                }
            }
            let wildcard_nodes = rows.iter().any(|(n, _)| n == "*");
            if wildcard_nodes && nodes.iter().any(|n| n != "*") {
                return Err(api(
                    ApiError::ConflictingElements,
                    format!("The user {user} has rights on all the nodes, cannot remove rights on specific nodes"),
                ));
            }
            let mut deleted = Rights::new();
            for (n, p) in rows {
                if !nodes.is_empty() && !nodes.iter().any(|m| *m == n || m == "*") {
                    continue;
                }
                if !parts.is_empty() && !parts.iter().any(|q| *q == p || q == "*") {
                    if p == "*" {
                        return Err(api(
                            ApiError::ConflictingElements,
                            format!("The user {user} has rights on all the partitions of {n}"),
                        ));
                    }
                    continue;
                }
                tx.execute("DELETE FROM rights WHERE user = ?1 AND node = ?2 AND part = ?3", params![user, n, p])?;
                deleted.entry(user.to_string()).or_default().entry(n).or_default().push(p);
            }
            if deleted.is_empty() {
                return Err(api(ApiError::NothingModified, format!("No rights removed for the user {user}")));
            }
            Ok(deleted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn granted_follows_wildcards_and_parts() {
        let s = Store::in_memory().unwrap();
        s.rights_add("root", &[], &[], false, &v(&["root"]))
            .unwrap();
        s.rights_add(
            "alice",
            &v(&["n1", "n2"]),
            &v(&["/dev/sda3"]),
            false,
            &v(&["root"]),
        )
        .unwrap();
        assert!(s.granted("alice", &v(&["n1", "n2"]), "").unwrap());
        assert!(s.granted("alice", &v(&["n1"]), "/dev/sda3").unwrap());
        assert!(!s.granted("alice", &v(&["n1"]), "/dev/sda2").unwrap());
        assert!(!s.granted("alice", &v(&["n1", "n3"]), "").unwrap());
        assert!(!s.granted("bob", &v(&["n1"]), "").unwrap());
        assert!(s.granted("root", &v(&["n9"]), "/dev/sda9").unwrap());
    }

    #[test]
    fn conflicts_and_overwrite() {
        let s = Store::in_memory().unwrap();
        s.rights_add("alice", &v(&["n1"]), &[], false, &[]).unwrap();
        let err = s
            .rights_add("bob", &v(&["n1"]), &[], false, &[])
            .unwrap_err();
        assert!(matches!(err, super::super::StoreError::Api(ref e) if e.kind.code() == 11));
        assert!(
            s.granted("alice", &v(&["n1"]), "").unwrap(),
            "a refused request changes nothing"
        );
        s.rights_add("bob", &v(&["n1"]), &[], true, &[]).unwrap();
        assert!(!s.granted("alice", &v(&["n1"]), "").unwrap());
        let err = s
            .rights_add("bob", &v(&["n1"]), &[], false, &[])
            .unwrap_err();
        assert!(matches!(err, super::super::StoreError::Api(ref e) if e.kind.code() == 14));
        let del = s.rights_delete("bob", &v(&["n1"]), &[]).unwrap();
        assert_eq!(del["bob"]["n1"], v(&["*"]));
        assert!(s.rights_get(Some("bob"), &[]).unwrap().is_empty());
    }
}
