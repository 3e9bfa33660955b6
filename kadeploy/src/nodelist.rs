//! Node lists: range expansion (`node-[1-3,5].dom`) and folding.
//!
//! The syntax is Kadeploy's (`REGEXP_NODELIST`/`REGEXP_IPLIST` in `common/nodes.rb`): a bracket group holds
//! comma-separated numbers and `first-last` ranges, e.g. `griffon-[1-92].nancy.grid5000.fr` or `10.0.65.[1-92]`.
//! When both bounds of a range have the same width the numbers are zero-padded to it (`[01-10]` gives `01`..`10`).
//! Several bracket groups expand as a product, and top-level commas separate items, so `expand` reads back what
//! [`fold`] prints.

mod fold;

pub use fold::fold;

/// Most names one expression may expand to.
pub const MAX_NODES: usize = 1_000_000;

/// Why a node list could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeListError {
    /// The list is empty, or has an empty item between commas.
    #[error("empty node name in `{list}`")]
    Empty {
        /// The whole list.
        list: String,
    },
    /// A `[` without `]`, a `]` without `[`, or nested brackets.
    #[error("unbalanced brackets in `{list}`")]
    Brackets {
        /// The whole list.
        list: String,
    },
    /// A bracket group that is not numbers and ranges, or a character not allowed in a host name.
    #[error("invalid range `{range}` in `{list}`: {reason}")]
    Syntax {
        /// The whole list.
        list: String,
        /// The offending part.
        range: String,
        /// What is wrong.
        reason: String,
    },
    /// A range whose first bound is larger than its last.
    #[error("reversed range `{range}` in `{list}`")]
    Reversed {
        /// The whole list.
        list: String,
        /// The offending range.
        range: String,
    },
    /// The expression gives more than [`MAX_NODES`] names.
    #[error("`{list}` expands to more than {MAX_NODES} names")]
    TooLarge {
        /// The whole list.
        list: String,
    },
}

/// Expands a node list into names, in order: `node-[1-3,5].dom` gives `node-1.dom`, `node-2.dom`, `node-3.dom`,
/// `node-5.dom`; a name without brackets is returned as is.
pub fn expand(list: &str) -> Result<Vec<String>, NodeListError> {
    let mut out = Vec::new();
    for item in split_top_level(list)? {
        let item = item.trim();
        if item.is_empty() {
            return Err(NodeListError::Empty { list: list.into() });
        }
        expand_item(list, item, &mut out)?;
    }
    Ok(out)
}

/// Splits on commas outside brackets; checks that brackets are balanced and not nested.
fn split_top_level(list: &str) -> Result<Vec<&str>, NodeListError> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in list.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            ']' if depth == 1 => depth = 0,
            '[' | ']' => return Err(NodeListError::Brackets { list: list.into() }),
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(NodeListError::Brackets { list: list.into() });
    }
    items.push(&list[start..]);
    Ok(items)
}

/// Expands one item (no top-level comma) and appends its names to `out`.
fn expand_item(list: &str, item: &str, out: &mut Vec<String>) -> Result<(), NodeListError> {
    let syntax = |range: &str, reason: &str| NodeListError::Syntax {
        list: list.into(),
        range: range.into(),
        reason: reason.into(),
    };
    // Literal parts and bracket groups alternate: parts[0] [groups[0]] parts[1] ...
    let mut parts = Vec::new();
    let mut groups = Vec::new();
    let mut rest = item;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|c| open + c)
            .ok_or_else(|| NodeListError::Brackets { list: list.into() })?;
        parts.push(&rest[..open]);
        groups.push(parse_group(list, &rest[open..=close])?);
        rest = &rest[close + 1..];
    }
    parts.push(rest);
    for part in &parts {
        if let Some(bad) = part.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(syntax(item, &format!("unexpected character {bad:?}")));
        }
    }
    let total = groups.iter().try_fold(1usize, |acc, group| {
        acc.checked_mul(group.len())
            .filter(|&total| total <= MAX_NODES)
    });
    if total.is_none_or(|total| out.len() + total > MAX_NODES) {
        return Err(NodeListError::TooLarge { list: list.into() });
    }
    let mut names = vec![parts[0].to_string()];
    for (group, part) in groups.iter().zip(&parts[1..]) {
        names = names
            .iter()
            .flat_map(|head| group.iter().map(move |num| format!("{head}{num}{part}")))
            .collect();
    }
    out.extend(names);
    Ok(())
}

/// Parses `[a-b,c,...]` into the formatted numbers it stands for.
fn parse_group(list: &str, group: &str) -> Result<Vec<String>, NodeListError> {
    let syntax = |reason: &str| NodeListError::Syntax {
        list: list.into(),
        range: group.into(),
        reason: reason.into(),
    };
    let inner = &group[1..group.len() - 1];
    let mut out = Vec::new();
    for piece in inner.split(',') {
        let piece = piece.trim();
        let (first, last) = piece.split_once('-').unwrap_or((piece, piece));
        let (first, last) = (first.trim(), last.trim());
        let number = |text: &str| -> Result<u64, NodeListError> {
            if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax(&format!(
                    "`{piece}` is not a number or a range `first-last`"
                )));
            }
            text.parse().map_err(|_| syntax("number too large"))
        };
        let (low, high) = (number(first)?, number(last)?);
        if low > high {
            return Err(NodeListError::Reversed {
                list: list.into(),
                range: piece.into(),
            });
        }
        if (high - low) as usize >= MAX_NODES || out.len() + (high - low) as usize >= MAX_NODES {
            return Err(NodeListError::TooLarge { list: list.into() });
        }
        let width = if first.len() == last.len() {
            first.len()
        } else {
            0
        };
        out.extend((low..=high).map(|num| format!("{num:0width$}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(list: &str) -> Vec<String> {
        expand(list).unwrap_or_else(|e| panic!("{list}: {e}"))
    }

    #[test]
    fn expands_kadeploy_forms() {
        let griffon = ok("griffon-[1-92].nancy.grid5000.fr");
        assert_eq!(griffon.len(), 92);
        assert_eq!(griffon[0], "griffon-1.nancy.grid5000.fr");
        assert_eq!(griffon[91], "griffon-92.nancy.grid5000.fr");
        assert_eq!(
            ok("node-[1-3,5].dom"),
            ["node-1.dom", "node-2.dom", "node-3.dom", "node-5.dom"]
        );
        assert_eq!(ok("10.0.65.[1-3]"), ["10.0.65.1", "10.0.65.2", "10.0.65.3"]);
        assert_eq!(ok("n[01-10]")[..2], ["n01", "n02"]);
        assert_eq!(ok("n[01-10]")[9], "n10");
        assert_eq!(ok("n[8-10]"), ["n8", "n9", "n10"]);
        assert_eq!(ok("n[007]"), ["n007"]);
        assert_eq!(ok("frontend.dom"), ["frontend.dom"]);
        assert_eq!(ok("a.dom, b.dom"), ["a.dom", "b.dom"]);
        assert_eq!(ok("r[1-2]n[1-2]"), ["r1n1", "r1n2", "r2n1", "r2n2"]);
        assert_eq!(ok("n-[ 1 - 2 ]"), ["n-1", "n-2"]);
    }

    #[test]
    fn rejects_bad_lists() {
        let err = |list: &str| expand(list).unwrap_err();
        assert!(matches!(err(""), NodeListError::Empty { .. }));
        assert!(matches!(err("a,,b"), NodeListError::Empty { .. }));
        assert!(matches!(err("node-[1-3"), NodeListError::Brackets { .. }));
        assert!(matches!(err("node-1-3]"), NodeListError::Brackets { .. }));
        assert!(matches!(err("node-[[1]]"), NodeListError::Brackets { .. }));
        assert!(matches!(err("node-[5-1]"), NodeListError::Reversed { .. }));
        assert!(matches!(err("node-[]"), NodeListError::Syntax { .. }));
        assert!(matches!(err("node-[a-b]"), NodeListError::Syntax { .. }));
        assert!(matches!(err("node-[1-]"), NodeListError::Syntax { .. }));
        assert!(matches!(err("node 1"), NodeListError::Syntax { .. }));
        assert!(matches!(
            err("n[0-1000000]"),
            NodeListError::TooLarge { .. }
        ));
        assert!(matches!(
            err("n[1-1000]m[1-1000]x[1-2]"),
            NodeListError::TooLarge { .. }
        ));
        assert!(matches!(
            err("n[1-99999999999999999999]"),
            NodeListError::Syntax { .. }
        ));
        assert_eq!(
            err("node-[5-1].dom").to_string(),
            "reversed range `5-1` in `node-[5-1].dom`"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn never_panics(text in "[a-zé0-9.,\\[\\] -]{0,30}") {
            let _ = expand(&text);
        }
    }
}
