//! YAML reading: wire structs from a file's text, plus "Unused field" warnings for keys they do not know.

use super::error::ConfigError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Parses `text` (the contents of `file`) into the wire struct `T`.
///
/// Unknown keys are not fatal: they are returned as warnings `Unused field <path> in <file>`. They are found by
/// comparing the document with the wire struct serialised back, so every wire field must always be serialised.
/// Warnings are sorted by key path. An empty document counts as an empty mapping.
pub(crate) fn parse_yaml<T>(text: &str, file: &str) -> Result<(T, Vec<String>), ConfigError>
where
    T: DeserializeOwned + Serialize,
{
    let error = |message: String| ConfigError::Yaml {
        file: file.into(),
        message,
    };
    let tree: Value =
        serde_saphyr::from_str(text).map_err(|e| error(first_line(&e.to_string())))?;
    let wire: T = if tree.is_null() {
        serde_json::from_value(Value::Object(serde_json::Map::new()))
            .map_err(|e| error(e.to_string()))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| error(first_line(&e.to_string())))?
    };
    let mut warnings = Vec::new();
    if let Ok(known) = serde_json::to_value(&wire) {
        unused_fields(&tree, &known, "", &mut |path| {
            warnings.push(format!("Unused field {path} in {file}"));
        });
    }
    warnings.sort();
    Ok((wire, warnings))
}

/// The first line of a parser message, without its `error: ` prefix (the rest is a source snippet).
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message);
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// Reports the keys of `input` that `known` does not have, recursing into mappings and sequences.
fn unused_fields(input: &Value, known: &Value, path: &str, report: &mut dyn FnMut(String)) {
    match (input, known) {
        (Value::Object(input), Value::Object(known)) => {
            for (key, value) in input {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}/{key}")
                };
                match known.get(key) {
                    Some(known) => unused_fields(value, known, &sub, report),
                    None => report(sub),
                }
            }
        }
        (Value::Array(input), Value::Array(known)) => {
            for (i, (value, known)) in input.iter().zip(known).enumerate() {
                unused_fields(value, known, &format!("{path}[{i}]"), report);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, Serialize)]
    #[serde(default)]
    struct Inner {
        a: Option<String>,
        b: u32,
    }

    #[derive(Debug, Default, Deserialize, Serialize)]
    #[serde(default)]
    struct Top {
        x: Inner,
        list: Vec<Inner>,
    }

    #[test]
    fn warns_about_unknown_keys() {
        let text = "x: {a: 60, zz: 1}\nlist:\n  - {b: 2, c: 3}\nother: {deep: 1}\n";
        let (top, warnings) = parse_yaml::<Top>(text, "f.conf").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(top.x.a.as_deref(), Some("60"));
        assert_eq!(
            warnings,
            [
                "Unused field list[0]/c in f.conf",
                "Unused field other in f.conf",
                "Unused field x/zz in f.conf"
            ]
        );
    }

    #[test]
    fn empty_document_and_errors() {
        let (top, warnings) =
            parse_yaml::<Top>("---\n", "f.conf").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((top.x.b, warnings.len()), (0, 0));
        let err = parse_yaml::<Top>("x: {b: notanumber}\n", "f.conf")
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("f.conf: line 1 column"),
            "{err}"
        );
        let err = parse_yaml::<Top>("x: [1\n", "f.conf")
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, ConfigError::Yaml { .. }), "{err}");
    }
}
