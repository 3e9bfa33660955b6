//! Typed reads of `server.conf` values shared by the `backend/*` converters: a key's value (null counts as
//! absent), strings, ports, and the error for a value of the wrong type.

use super::error::{ConfigError, Ctx};
use serde_json::{Map, Value};

/// The value of `key` in `map`; a null value counts as absent.
pub(crate) fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// A string value.
pub(crate) fn string(value: &Value, key: &str, ctx: Ctx<'_>) -> Result<String, ConfigError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| expected(ctx, key, value, "a string"))
}

/// A port number.
pub(crate) fn port(value: &Value, key: &str, ctx: Ctx<'_>) -> Result<u16, ConfigError> {
    value
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| expected(ctx, key, value, "a port number"))
}

/// The error for a value of the wrong type or range.
pub(crate) fn expected(ctx: Ctx<'_>, key: &str, value: &Value, what: &str) -> ConfigError {
    ctx.invalid(key, format!("invalid value `{value}` (expected {what})"))
}
