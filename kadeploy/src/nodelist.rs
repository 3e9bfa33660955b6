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

/// Longest part of a list quoted in an error (characters): lists come from requests of up to 1 MiB.
const MAX_SHOWN: usize = 100;

/// Why a node list could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeListError {
    /// The list is empty, or has an empty item between commas.
    #[error("empty node name in `{list}`")]
    Empty {
        /// The whole list (cut to a readable length).
        list: String,
    },
    /// A `[` without `]`, a `]` without `[`, or nested brackets.
    #[error("unbalanced brackets in `{list}`")]
    Brackets {
        /// The whole list (cut to a readable length).
        list: String,
    },
    /// A bracket group that is not numbers and ranges, or a character not allowed in a host name.
    #[error("invalid range `{range}` in `{list}`: {reason}")]
    Syntax {
        /// The whole list (cut to a readable length).
        list: String,
        /// The offending part.
        range: String,
        /// What is wrong.
        reason: String,
    },
    /// A range whose first bound is larger than its last.
    #[error("reversed range `{range}` in `{list}`")]
    Reversed {
        /// The whole list (cut to a readable length).
        list: String,
        /// The offending range.
        range: String,
    },
    /// The expression gives more than `max` names.
    #[error("`{list}` expands to more than {max} names")]
    TooLarge {
        /// The whole list (cut to a readable length).
        list: String,
        /// The limit.
        max: usize,
    },
}

/// `text` cut to [`MAX_SHOWN`] characters, for error messages.
pub fn shown(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Expands a node list into names, in order: `node-[1-3,5].dom` gives `node-1.dom`, `node-2.dom`, `node-3.dom`,
/// `node-5.dom`; a name without brackets is returned as is. At most [`MAX_NODES`] names.
pub fn expand(list: &str) -> Result<Vec<String>, NodeListError> {
    expand_at_most(list, MAX_NODES)
}

/// Like [`expand`], but a list giving more than `max` names is [`NodeListError::TooLarge`], found by
/// counting before any name is built: the work and memory are those of the text plus `max` names.
pub fn expand_at_most(list: &str, max: usize) -> Result<Vec<String>, NodeListError> {
    let max = max.min(MAX_NODES);
    let items = parse(list)?;
    let Some(total) = total(&items).filter(|&total| total <= max) else {
        return Err(NodeListError::TooLarge {
            list: shown(list),
            max,
        });
    };
    let mut out = Vec::with_capacity(total);
    for item in &items {
        item.expand_into(&mut out);
    }
    Ok(out)
}

/// How many names a list gives, without building them.
pub fn count(list: &str) -> Result<usize, NodeListError> {
    total(&parse(list)?).ok_or_else(|| NodeListError::TooLarge {
        list: shown(list),
        max: MAX_NODES,
    })
}

/// Names of all items, `None` past [`MAX_NODES`].
fn total(items: &[Item<'_>]) -> Option<usize> {
    items
        .iter()
        .try_fold(0usize, |acc, item| acc.checked_add(item.count()?))
        .filter(|&total| total <= MAX_NODES)
}

/// One item (no top-level comma): literal parts and bracket groups alternate, `parts[0] groups[0] parts[1] ...`.
struct Item<'a> {
    parts: Vec<&'a str>,
    groups: Vec<Vec<Span>>,
}

/// `low..=high` of a bracket group, zero-padded to `width` digits (0: natural).
struct Span {
    low: u64,
    high: u64,
    width: usize,
}

impl Span {
    /// Numbers in the span (saturating: a span is at most 10^18 wide).
    fn len(&self) -> usize {
        usize::try_from(self.high - self.low)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    }
}

impl Item<'_> {
    /// Names of the item, `None` past [`MAX_NODES`].
    fn count(&self) -> Option<usize> {
        self.groups.iter().try_fold(1usize, |acc, group| {
            let len = group
                .iter()
                .try_fold(0usize, |sum, span| sum.checked_add(span.len()))?;
            acc.checked_mul(len).filter(|&total| total <= MAX_NODES)
        })
    }

    /// Appends the item's names (call only once [`Item::count`] is known to be small enough).
    fn expand_into(&self, out: &mut Vec<String>) {
        let mut names = vec![self.parts.first().copied().unwrap_or("").to_string()];
        for (group, part) in self.groups.iter().zip(self.parts.iter().skip(1)) {
            let numbers: Vec<String> = group
                .iter()
                .flat_map(|s| {
                    (s.low..=s.high).map(move |num| format!("{num:0width$}", width = s.width))
                })
                .collect();
            names = names
                .iter()
                .flat_map(|head| numbers.iter().map(move |num| format!("{head}{num}{part}")))
                .collect();
        }
        out.extend(names);
    }
}

/// Parses every item of a list, building no name.
fn parse(list: &str) -> Result<Vec<Item<'_>>, NodeListError> {
    let mut items = Vec::new();
    for item in split_top_level(list)? {
        let item = item.trim();
        if item.is_empty() {
            return Err(NodeListError::Empty { list: shown(list) });
        }
        items.push(parse_item(list, item)?);
    }
    Ok(items)
}

/// Splits on commas outside brackets; checks that brackets are balanced and not nested.
fn split_top_level(list: &str) -> Result<Vec<&str>, NodeListError> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in list.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            ']' if depth == 1 => depth = 0,
            '[' | ']' => return Err(NodeListError::Brackets { list: shown(list) }),
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(NodeListError::Brackets { list: shown(list) });
    }
    items.push(&list[start..]);
    Ok(items)
}

/// Parses one item (no top-level comma, brackets balanced).
fn parse_item<'a>(list: &str, item: &'a str) -> Result<Item<'a>, NodeListError> {
    let mut parts = Vec::new();
    let mut groups = Vec::new();
    let mut rest = item;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|c| open + c)
            .ok_or_else(|| NodeListError::Brackets { list: shown(list) })?;
        parts.push(&rest[..open]);
        groups.push(parse_group(list, &rest[open + 1..close])?);
        rest = &rest[close + 1..];
    }
    parts.push(rest);
    for part in &parts {
        if let Some(bad) = part.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(NodeListError::Syntax {
                list: shown(list),
                range: shown(item),
                reason: format!("unexpected character {bad:?}"),
            });
        }
    }
    Ok(Item { parts, groups })
}

/// Parses the inside of `[a-b,c,...]` into spans.
fn parse_group(list: &str, inner: &str) -> Result<Vec<Span>, NodeListError> {
    let syntax = |reason: &str| NodeListError::Syntax {
        list: shown(list),
        range: shown(&format!("[{inner}]")),
        reason: reason.into(),
    };
    let mut out = Vec::new();
    for piece in inner.split(',') {
        let piece = piece.trim();
        let (first, last) = piece.split_once('-').unwrap_or((piece, piece));
        let (first, last) = (first.trim(), last.trim());
        let number = |text: &str| -> Result<u64, NodeListError> {
            if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax(&format!(
                    "`{}` is not a number or a range `first-last`",
                    shown(piece)
                )));
            }
            text.parse().map_err(|_| syntax("number too large"))
        };
        let (low, high) = (number(first)?, number(last)?);
        if low > high {
            return Err(NodeListError::Reversed {
                list: shown(list),
                range: shown(piece),
            });
        }
        let width = if first.len() == last.len() {
            first.len()
        } else {
            0
        };
        out.push(Span { low, high, width });
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

    #[test]
    fn counts_before_building() {
        assert_eq!(count("n[1-1000000]"), Ok(1_000_000));
        assert_eq!(count("n[1-3],m[1-2]x[1-2]"), Ok(7));
        assert!(matches!(
            count("n[1-1000000],m"),
            Err(NodeListError::TooLarge { .. })
        ));
        assert!(matches!(
            expand_at_most("node-[1-999999].sim.kadeploy", 364),
            Err(NodeListError::TooLarge { max: 364, .. })
        ));
        assert!(matches!(
            expand_at_most("n[1-300],n[1-300]", 364),
            Err(NodeListError::TooLarge { .. })
        ));
        assert_eq!(
            expand_at_most("n[1-3]", 3).map(|n| n.len()),
            Ok(3),
            "exactly the limit is fine"
        );
        assert!(matches!(
            expand_at_most("n[1-3]", 2),
            Err(NodeListError::TooLarge { max: 2, .. })
        ));
    }

    #[test]
    fn errors_quote_long_lists_briefly() {
        let long = format!("{}[", "x".repeat(10_000));
        let msg = expand(&long).unwrap_err().to_string();
        assert!(msg.chars().count() < 200, "{msg}");
        assert_eq!(shown("short"), "short");
        assert_eq!(shown(&"é".repeat(500)).chars().count(), MAX_SHOWN + 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "[a-zé0-9.,\\[\\] -]{0,30}") {
            let _ = expand(&text);
        }
    }
}
