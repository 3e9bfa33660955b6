//! Values shaped as Kadeploy's Ruby server builds them: hashes keep their insertion order and say which
//! keys are Ruby Symbols (`:wid` in `to_yaml`) and which are Strings (spec §3.1, "YAML quirk").

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// A Ruby hash key.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    /// A Symbol: `:name:` in YAML, `"name"` in JSON.
    Sym(String),
    /// A String: `name:` in YAML and `"name"` in JSON.
    Str(String),
}

impl Key {
    /// The key's text, as JSON shows it.
    pub fn text(&self) -> &str {
        match self {
            Key::Sym(s) | Key::Str(s) => s,
        }
    }
}

/// A Ruby value: `nil`, booleans, numbers, strings, arrays and ordered hashes.
#[derive(Clone, Debug, PartialEq)]
pub enum Ruby {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// An Integer.
    Int(i64),
    /// A Float.
    Float(f64),
    /// A String.
    Str(String),
    /// An Array.
    Array(Vec<Ruby>),
    /// A Hash, in insertion order.
    Hash(Vec<(Key, Ruby)>),
}

impl Ruby {
    /// An empty hash.
    pub fn hash() -> Ruby {
        Ruby::Hash(Vec::new())
    }

    /// A hash whose keys are all Symbols, in the given order.
    pub fn symbols<K: Into<String>>(entries: impl IntoIterator<Item = (K, Ruby)>) -> Ruby {
        Ruby::Hash(
            entries
                .into_iter()
                .map(|(k, v)| (Key::Sym(k.into()), v))
                .collect(),
        )
    }

    /// Sets `key` (replacing its value in place when present, appending it otherwise); no-op on a
    /// value that is not a hash.
    pub fn set(&mut self, key: Key, value: impl Into<Ruby>) {
        if let Some(slot) = self.entry(key, || Ruby::Nil) {
            *slot = value.into();
        }
    }

    /// The value under `key`, inserted with `default()` at the end when absent; `None` when `self`
    /// is not a hash.
    pub fn entry(&mut self, key: Key, default: impl FnOnce() -> Ruby) -> Option<&mut Ruby> {
        let Ruby::Hash(entries) = self else {
            return None;
        };
        let i = match entries.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                entries.push((key, default()));
                entries.len() - 1
            }
        };
        entries.get_mut(i).map(|(_, v)| v)
    }

    /// The value under the Symbol `key`, if `self` is a hash holding it.
    pub fn get_sym(&self, key: &str) -> Option<&Ruby> {
        match self {
            Ruby::Hash(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Key::Sym(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl Serialize for Ruby {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ruby::Nil => s.serialize_unit(),
            Ruby::Bool(b) => s.serialize_bool(*b),
            Ruby::Int(i) => s.serialize_i64(*i),
            Ruby::Float(f) => s.serialize_f64(*f),
            Ruby::Str(t) => s.serialize_str(t),
            Ruby::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Ruby::Hash(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k.text(), v)?;
                }
                map.end()
            }
        }
    }
}

impl From<bool> for Ruby {
    fn from(b: bool) -> Self {
        Ruby::Bool(b)
    }
}

impl From<i64> for Ruby {
    fn from(i: i64) -> Self {
        Ruby::Int(i)
    }
}

impl From<f64> for Ruby {
    fn from(f: f64) -> Self {
        Ruby::Float(f)
    }
}

impl From<&str> for Ruby {
    fn from(s: &str) -> Self {
        Ruby::Str(s.to_string())
    }
}

impl From<String> for Ruby {
    fn from(s: String) -> Self {
        Ruby::Str(s)
    }
}

impl From<&String> for Ruby {
    fn from(s: &String) -> Self {
        Ruby::Str(s.clone())
    }
}

impl<T: Into<Ruby>> From<Option<T>> for Ruby {
    fn from(v: Option<T>) -> Self {
        v.map_or(Ruby::Nil, Into::into)
    }
}

impl<T: Into<Ruby>> From<Vec<T>> for Ruby {
    fn from(v: Vec<T>) -> Self {
        Ruby::Array(v.into_iter().map(Into::into).collect())
    }
}

/// JSON data, as Ruby parses it: String keys, in the JSON map's order.
impl From<&Value> for Ruby {
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => Ruby::Nil,
            Value::Bool(b) => Ruby::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map(Ruby::Int)
                .unwrap_or_else(|| Ruby::Float(n.as_f64().unwrap_or(0.0))),
            Value::String(s) => Ruby::Str(s.clone()),
            Value::Array(items) => Ruby::Array(items.iter().map(Ruby::from).collect()),
            Value::Object(m) => Ruby::Hash(
                m.iter()
                    .map(|(k, v)| (Key::Str(k.clone()), Ruby::from(v)))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_the_hash_order_and_drops_the_colons() {
        let mut v = Ruby::symbols([("wid", Ruby::from("D-1")), ("done", false.into())]);
        v.set(Key::Sym("time".into()), 1.5);
        v.set(Key::Sym("wid".into()), "D-2");
        let text = serde_json::to_string(&v).unwrap_or_default();
        assert_eq!(text, r#"{"wid":"D-2","done":false,"time":1.5}"#);
        assert_eq!(v.get_sym("done"), Some(&Ruby::Bool(false)));
        assert_eq!(
            Ruby::from(&serde_json::json!({"b": [1, null], "a": 2.5})),
            Ruby::Hash(vec![
                (Key::Str("a".into()), Ruby::Float(2.5)),
                (
                    Key::Str("b".into()),
                    Ruby::Array(vec![Ruby::Int(1), Ruby::Nil])
                ),
            ])
        );
    }
}
