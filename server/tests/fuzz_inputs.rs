//! Property tests feeding hostile inputs to what a request reaches before any right is checked: the
//! node-list expander, the environment-description parser and the parameter getters. Each input may be
//! accepted or refused; none may panic, and refusals of large lists must come before building them.
//! Cases: `PROPTEST_CASES` (CI: 32).

use kadeploy::envdesc::EnvDesc;
use kadeploy::nodelist::{self, NodeListError};
use kadeploy_server::params::Params;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Characters of the node-list grammar, a few others and `%`.
const GRAMMAR: &str = "[\\[\\]\\-,0-9a-z.% \t_é]{0,40}";

/// Valid lists the mutations start from.
const LISTS: &[&str] = &[
    "node-[1-3,5].dom",
    "griffon-[1-92].nancy.grid5000.fr",
    "10.0.65.[1-92]",
    "n[01-10]",
    "r[1-2]n[1-2],frontend.dom",
    "a.dom, b.dom",
    "n-[ 1 - 2 ]",
];

/// One edit of a text: insert, delete or replace a character at a relative position.
#[derive(Clone, Debug)]
enum Edit {
    Insert(f64, char),
    Delete(f64),
    Replace(f64, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop::sample::select(&['[', ']', '-', ',', '0', '9', '1', '%', ' ', 'a', '.', 'é'][..]);
    prop_oneof![
        (0.0..1.0, c.clone()).prop_map(|(p, c)| Edit::Insert(p, c)),
        (0.0..1.0).prop_map(Edit::Delete),
        (0.0..1.0, c).prop_map(|(p, c)| Edit::Replace(p, c)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len);
        match *e {
            Edit::Insert(p, c) => {
                let i = at(p, chars.len());
                chars.insert(i, c);
            }
            Edit::Delete(p) if !chars.is_empty() => {
                let i = at(p, chars.len() - 1);
                chars.remove(i);
            }
            Edit::Replace(p, c) if !chars.is_empty() => {
                let i = at(p, chars.len() - 1);
                chars[i] = c;
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn mutated_list() -> impl Strategy<Value = String> {
    (
        prop::sample::select(LISTS),
        prop::collection::vec(edit(), 0..6),
    )
        .prop_map(|(list, edits)| apply(list, &edits))
}

/// Checks the expander on one text: no panic, `count` agrees with the names built, and the bound of
/// `expand_at_most` is applied before building.
fn check_list(list: &str, max: usize) -> Result<(), TestCaseError> {
    let counted = nodelist::count(list);
    match nodelist::expand_at_most(list, max) {
        Ok(names) => {
            prop_assert!(names.len() <= max);
            prop_assert_eq!(counted, Ok(names.len()));
        }
        Err(NodeListError::TooLarge { max: limit, .. }) => {
            prop_assert_eq!(limit, max);
            if let Ok(n) = counted {
                prop_assert!(n > max, "{list:?}: {n} names refused with a limit of {max}");
            }
        }
        Err(e) => {
            prop_assert!(
                counted.is_err(),
                "{list:?}: count {counted:?} but expand {e:?}"
            );
            prop_assert!(
                e.to_string().chars().count() < 400,
                "error messages stay short"
            );
        }
    }
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        GRAMMAR.prop_map(Value::from),
        prop::sample::select(
            &[
                "tar",
                "dd",
                "fsa",
                "gzip",
                "xz",
                "linux",
                "xen",
                "0x83",
                "0x",
                "1",
                "-1",
                "4294967297",
                "private",
                "public"
            ][..]
        )
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(FIELDS).prop_map(String::from),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Keys of descriptions and of their sub-objects.
const FIELDS: &[&str] = &[
    "name",
    "version",
    "description",
    "author",
    "visibility",
    "destructive",
    "os",
    "image",
    "preinstall",
    "postinstalls",
    "boot",
    "filesystem",
    "partition_type",
    "multipart",
    "options",
    "file",
    "kind",
    "compression",
    "archive",
    "script",
    "kernel",
    "initrd",
    "kernel_params",
    "hypervisor",
    "hypervisor_params",
    "block_device",
    "partition",
    "partitions",
    "id",
    "device",
    "user",
];

/// A valid tar description and a valid multipart fsa one.
fn bases() -> [Value; 2] {
    [
        json!({"name": "debian12", "version": 1, "visibility": "shared", "os": "linux", "filesystem": "ext4",
            "image": {"file": "server:///envs/debian12.tgz", "kind": "tar", "compression": "gzip"},
            "boot": {"kernel": "/vmlinuz"}, "postinstalls": [{"archive": "/p.tgz", "compression": "gzip", "script": "t.sh"}]}),
        json!({"name": "m", "os": "linux", "multipart": true, "image": {"file": "/m.fsa", "kind": "fsa", "compression": 3},
            "boot": {"block_device": "/dev/sda", "partition": 2}, "options": {"partitions": [{"id": 0, "device": "/dev/sda1"}]}}),
    ]
}

/// A path into a description: top-level key, then optionally a key of the object there.
fn mutated_description() -> impl Strategy<Value = Value> {
    let path = (
        prop::sample::select(FIELDS),
        prop::option::of(prop::sample::select(FIELDS)),
    );
    (
        0usize..2,
        prop::collection::vec((path, prop::option::of(json_value())), 0..5),
    )
        .prop_map(|(base, edits)| {
            let mut desc = bases()[base].clone();
            for ((top, sub), value) in edits {
                let slot = match sub {
                    Some(sub) if desc[top].is_object() => &mut desc[top][sub],
                    _ => &mut desc[top],
                };
                match value {
                    Some(v) => *slot = v,
                    None => *slot = Value::Null,
                }
            }
            desc
        })
}

/// A description that parses must print back to itself.
fn check_description(v: &Value) -> Result<(), TestCaseError> {
    if let Ok((desc, _)) = EnvDesc::from_value(v) {
        let back = EnvDesc::from_value(&desc.to_value())
            .map_err(|e| TestCaseError::fail(format!("{v}: printed back as invalid: {e}")))?;
        prop_assert_eq!(&back.0, &desc);
        let _ = desc.short_kind();
        let _ = desc.to_engine("u", 1 << 30, 2.5);
    }
    Ok(())
}

proptest! {
    #[test]
    fn node_lists_from_the_grammar(list in GRAMMAR, max in 0usize..2_000) {
        check_list(&list, max)?;
    }

    #[test]
    fn mutated_node_lists(list in mutated_list(), max in 0usize..2_000) {
        check_list(&list, max)?;
    }

    #[test]
    fn node_lists_from_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64), max in 0usize..2_000) {
        check_list(&String::from_utf8_lossy(&bytes), max)?;
    }

    /// Any bounds, up to 20 digits, several groups: huge products are refused by counting (the test
    /// would run out of memory otherwise), never by building.
    #[test]
    fn node_list_ranges_of_any_size(
        groups in prop::collection::vec((any::<u64>(), any::<u64>(), 0usize..20), 1..4),
        copies in 1usize..4,
        max in 0usize..100_000,
    ) {
        let item: String = groups
            .iter()
            .map(|(a, b, digits)| {
                let cut = |n: u64| n.to_string().chars().take((*digits).max(1)).collect::<String>();
                format!("n[{}-{}]", cut(*a), cut(*b))
            })
            .collect();
        let list = vec![item; copies].join(",");
        check_list(&list, max)?;
    }

    #[test]
    fn folded_names_expand_back(names in prop::collection::vec("[a-z]{1,3}-?[0-9]{0,4}(\\.[a-z]{1,3})?", 0..12)) {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let folded = nodelist::fold(&refs);
        if !folded.is_empty() {
            let mut back = nodelist::expand(&folded).map_err(|e| TestCaseError::fail(format!("{folded}: {e}")))?;
            back.sort();
            back.dedup();
            let mut expected = names.clone();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(back, expected);
        }
    }

    #[test]
    fn descriptions_from_random_json(v in json_value()) {
        check_description(&v)?;
    }

    #[test]
    fn mutated_descriptions(v in mutated_description()) {
        check_description(&v)?;
    }

    #[test]
    fn descriptions_from_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            check_description(&v)?;
        }
        if let Ok(v) = serde_saphyr::from_str::<Value>(&text) {
            check_description(&v)?;
        }
    }

    /// Versions are u32: anything larger is refused, never wrapped (4294967297 was version 1).
    #[test]
    fn description_versions_are_never_wrapped(version in prop_oneof![any::<u64>(), 0u64..10, (1u64 << 32) - 2..(1u64 << 32) + 3], as_text in any::<bool>()) {
        let mut v = bases()[0].clone();
        v["version"] = if as_text { json!(version.to_string()) } else { json!(version) };
        match EnvDesc::from_value(&v) {
            Ok((desc, _)) => prop_assert_eq!(u64::from(desc.version), version),
            Err(e) => {
                prop_assert!(version > u64::from(u32::MAX), "{version} refused: {e}");
                prop_assert_eq!(e.kind.code(), 7);
            }
        }
    }

    #[test]
    fn parameters_from_random_queries(
        query in "[a-z_=&%0-9\\[\\]+.\\-]{0,60}",
        body in prop::collection::btree_map(prop::sample::select(FIELDS).prop_map(String::from), json_value(), 0..4),
    ) {
        let p = Params::merge(body.into_iter().collect::<Map<String, Value>>(), Some(&query));
        for key in FIELDS {
            let _ = p.string(key);
            let _ = p.string_or_empty(key);
            let _ = p.required(key);
            let _ = p.strings(key);
            let _ = p.int(key);
            let _ = p.object(key);
            let _ = p.one_of(key, &["a", "b"]);
            let _ = p.toggle(key);
        }
    }
}
