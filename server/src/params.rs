//! Request parameters as Kadeploy's `ParamsParser` sees them: a JSON or YAML body object merged with the
//! query string (repeated keys become arrays, query keys win), read through typed getters that fail with
//! error 4 `Parameter 'x': should be a String`.

use kadeploy::error::{ApiError, RequestError};
use serde_json::{Map, Value};

/// The merged parameters of one request.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Map<String, Value>);

fn invalid(key: &str, what: &str) -> RequestError {
    RequestError::new(
        ApiError::InvalidOption,
        format!("Parameter '{key}': {what}"),
    )
}

impl Params {
    /// Body object (already parsed) merged with the `query` string.
    pub fn merge(body: Map<String, Value>, query: Option<&str>) -> Params {
        let mut map = body;
        let mut from_query: Map<String, Value> = Map::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let v = Value::String(v.into_owned());
            match from_query.get_mut(k.as_ref()) {
                Some(Value::Array(a)) => a.push(v),
                Some(old) => {
                    let first = old.take();
                    *old = Value::Array(vec![first, v]);
                }
                None => {
                    from_query.insert(k.into_owned(), v);
                }
            }
        }
        map.extend(from_query);
        Params(map)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// The key is present.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A toggle: true when present and not JSON `false`.
    pub fn toggle(&self, key: &str) -> bool {
        !matches!(self.get(key), None | Some(Value::Bool(false)))
    }

    /// An optional non-empty string (numbers are accepted as their text).
    pub fn string(&self, key: &str) -> Result<Option<String>, RequestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Err(invalid(key, "cannot be empty")),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(invalid(key, "should be a String")),
        }
    }

    /// An optional string that may be empty.
    pub fn string_or_empty(&self, key: &str) -> Result<Option<String>, RequestError> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => self.string(key),
        }
    }

    /// A mandatory string (error 12 when missing).
    pub fn required(&self, key: &str) -> Result<String, RequestError> {
        self.string(key)?.ok_or_else(|| {
            RequestError::new(
                ApiError::MissingOption,
                format!("Parameter '{key}': is mandatory"),
            )
        })
    }

    /// An array of strings; a single string is wrapped.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, RequestError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(invalid(key, "should be an Array of String")),
                })
                .collect(),
            Some(_) => Err(invalid(key, "should be an Array")),
        }
    }

    /// An optional integer (a string of digits is accepted).
    pub fn int(&self, key: &str) -> Result<Option<i64>, RequestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| invalid(key, "should be an Integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(key, "should be an Integer")),
            Some(_) => Err(invalid(key, "should be an Integer")),
        }
    }

    /// An optional object.
    pub fn object(&self, key: &str) -> Result<Option<&Map<String, Value>>, RequestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(invalid(key, "should be a Hash")),
        }
    }

    /// An optional value among `allowed`.
    pub fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, RequestError> {
        match self.string(key)? {
            Some(v) if !allowed.contains(&v.as_str()) => Err(invalid(
                key,
                &format!("must have a value in ({})", allowed.join(", ")),
            )),
            v => Ok(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_overrides_body_and_repeats_become_arrays() {
        let body = json!({"nodes": ["x"], "last": false})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let p = Params::merge(body, Some("nodes=a&nodes=b&user=alice&last=false"));
        assert_eq!(p.strings("nodes").unwrap(), ["a", "b"]);
        assert_eq!(p.strings("user").unwrap(), ["alice"]);
        assert!(p.toggle("last"), "?last=false means true, as in Kadeploy");
        assert!(!p.toggle("absent"));
        let p = Params::merge(
            json!({"n": {"a": 1}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            None,
        );
        let err = p.string("n").unwrap_err();
        assert_eq!(err.kind.code(), 4);
        assert_eq!(err.detail, "Parameter 'n': should be a String");
        assert!(p.int("n").is_err());
    }
}
