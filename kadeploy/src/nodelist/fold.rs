//! Folding node names into Kadeploy's compact range form (`node-[1-3,5].dom`), the inverse of `expand`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// How the numbers of a group are written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Width {
    /// Without padding (`1`, `10`).
    Natural,
    /// Zero-padded to this many digits (`01`, `10`).
    Padded(usize),
}

/// What names are grouped by (borrowed from the names: folding a million names copies none of them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key<'a> {
    /// Names that differ only by one number.
    Range {
        prefix: &'a str,
        suffix: &'a str,
        width: Width,
    },
    /// A name without a usable number, printed as is.
    Literal(&'a str),
}

/// Folds names into a node list: names that differ only by their number are grouped as `prefix[ranges]suffix`,
/// groups in the order of their first name, numbers sorted and deduplicated; a group of one name prints as is and
/// groups are joined with `,`.
///
/// The number of a host name is the last digit run of its first label (`griffon-12` in
/// `griffon-12.nancy.grid5000.fr`); for an IPv4 address it is the last byte. Numbers written with leading zeros
/// only group with numbers of the same width, so `expand` reads back the same names.
pub fn fold<'a>(names: &[&'a str]) -> String {
    let split: Vec<Option<(&'a str, &'a str, &'a str)>> =
        names.iter().map(|name| split_number(name)).collect();
    let padded: BTreeMap<(&str, &str, usize), ()> = split
        .iter()
        .flatten()
        .filter(|(_, digits, _)| digits.len() > 1 && digits.starts_with('0'))
        .map(|(prefix, digits, suffix)| ((*prefix, *suffix, digits.len()), ()))
        .collect();
    let mut index: BTreeMap<Key<'a>, usize> = BTreeMap::new();
    let mut groups: Vec<(Key<'a>, Vec<u64>)> = Vec::new();
    // Consecutive names are mostly of one group: the last group found is tried before the index.
    let mut last: Option<(Key<'a>, usize)> = None;
    for (name, parts) in names.iter().zip(&split) {
        let (key, number) =
            match parts.and_then(|(p, d, s)| d.parse::<u64>().ok().map(|num| (p, d, s, num))) {
                Some((prefix, digits, suffix, num)) => {
                    let width = if padded.contains_key(&(prefix, suffix, digits.len())) {
                        Width::Padded(digits.len())
                    } else {
                        Width::Natural
                    };
                    let key = Key::Range {
                        prefix,
                        suffix,
                        width,
                    };
                    (key, Some(num))
                }
                None => (Key::Literal(name), None),
            };
        let slot = match &last {
            Some((k, slot)) if *k == key => *slot,
            _ => {
                let slot = *index.entry(key.clone()).or_insert_with(|| {
                    groups.push((key.clone(), Vec::new()));
                    groups.len() - 1
                });
                last = Some((key, slot));
                slot
            }
        };
        if let (Some(num), Some((_, numbers))) = (number, groups.get_mut(slot)) {
            numbers.push(num);
        }
    }
    let printed: Vec<String> = groups
        .into_iter()
        .map(|(key, numbers)| print_group(key, numbers))
        .collect();
    printed.join(",")
}

/// Splits a name into prefix, number and suffix, or `None` when it has no digits.
fn split_number(name: &str) -> Option<(&str, &str, &str)> {
    let label_end = if name.parse::<Ipv4Addr>().is_ok() {
        name.len()
    } else {
        let first_label = name.find('.').unwrap_or(name.len());
        if name[..first_label].bytes().any(|b| b.is_ascii_digit()) {
            first_label
        } else {
            name.len()
        }
    };
    let head = &name[..label_end];
    let end = head.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = head[..end]
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(0, |(i, c)| i + c.len_utf8());
    // Longer numbers would not fit a u64: keep such names literal.
    if end - start > 18 {
        return None;
    }
    Some((&name[..start], &name[start..end], &name[end..]))
}

/// Prints one group: as is for a single name, else `prefix[a-b,c]suffix`.
fn print_group(key: Key<'_>, mut numbers: Vec<u64>) -> String {
    let (prefix, suffix, width) = match key {
        Key::Literal(name) => return name.to_string(),
        Key::Range {
            prefix,
            suffix,
            width,
        } => (prefix, suffix, width),
    };
    let pad = match width {
        Width::Natural => 0,
        Width::Padded(w) => w,
    };
    numbers.sort_unstable();
    numbers.dedup();
    if let [single] = numbers.as_slice() {
        return format!("{prefix}{single:0pad$}{suffix}");
    }
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let first = numbers[i];
        let mut last = first;
        while numbers.get(i + 1) == Some(&(last + 1)) {
            last += 1;
            i += 1;
        }
        ranges.push(if first == last {
            format!("{first:0pad$}")
        } else {
            format!("{first:0pad$}-{last:0pad$}")
        });
        i += 1;
    }
    format!("{prefix}[{}]{suffix}", ranges.join(","))
}

#[cfg(test)]
mod tests {
    use super::super::expand;
    use super::*;

    fn round_trip(list: &str) {
        let names = expand(list).unwrap_or_else(|e| panic!("{list}: {e}"));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(fold(&refs), list);
    }

    #[test]
    fn folds_and_round_trips() {
        round_trip("node-[1-3,5].dom");
        round_trip("griffon-[1-92].nancy.grid5000.fr");
        round_trip("10.0.65.[1-92]");
        round_trip("n[01-10]");
        round_trip("n[8-12]");
        round_trip("node-[1-250].sim.kadeploy,10.16.1.[1-50]");
        round_trip("c3-[1,4-6].dom");
        round_trip("frontend.dom");
        round_trip("node-7.dom");
    }

    #[test]
    fn groups_in_first_appearance_order() {
        assert_eq!(fold(&[]), "");
        assert_eq!(fold(&["b-2", "a-1", "b-1", "b-3", "b-2"]), "b-[1-3],a-1");
        assert_eq!(fold(&["n01", "n10", "n2", "n3"]), "n[01,10],n[2-3]");
        assert_eq!(
            fold(&["x.dom", "n1.dom", "y.dom", "n2.dom"]),
            "x.dom,n[1-2].dom,y.dom"
        );
        assert_eq!(
            fold(&["grid5000.fr", "host.grid5000.fr"]),
            "grid5000.fr,host.grid5000.fr"
        );
        assert_eq!(fold(&["n-99999999999999999999"]), "n-99999999999999999999");
        assert_eq!(fold(&["é1", "é2", "ü"]), "é[1-2],ü");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        #[test]
        fn never_panics(names in proptest::collection::vec("\\PC{0,12}", 0..6)) {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let _ = fold(&refs);
        }

        #[test]
        fn expand_reads_back_fold(numbers in proptest::collection::vec(0u64..300, 1..40), pad in 0usize..4) {
            let names: Vec<String> = numbers.iter().map(|n| format!("node-{n:0pad$}.dom")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let folded = fold(&refs);
            let mut expected = names.clone();
            expected.sort_by_key(|name| split_number(name).and_then(|(_, d, _)| d.parse::<u64>().ok()));
            expected.dedup();
            let mut back = expand(&folded).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            back.sort_by_key(|name| split_number(name).and_then(|(_, d, _)| d.parse::<u64>().ok()));
            proptest::prop_assert_eq!(back, expected);
        }
    }
}
