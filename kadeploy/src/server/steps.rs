//! The request fields that reshape a deployment's automata (spec §3.7, §5.7): `custom_operations`
//! (error 8 when invalid) and `automata` (`--force-steps`, error 4 when invalid).

use crate::config::{
    Automata, BOOT_NEW_ENV_TYPES, BROADCAST_ENV_TYPES, MacroInstance, SET_DEPLOYMENT_ENV_TYPES,
};
use crate::engine::custom::{CustomAction, CustomMicro, CustomOp, CustomOps};
use crate::error::{ApiError, RequestError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const SLOTS: [(&str, &[&str]); 3] = [
    ("SetDeploymentEnv", &SET_DEPLOYMENT_ENV_TYPES),
    ("BroadcastEnv", &BROADCAST_ENV_TYPES),
    ("BootNewEnv", &BOOT_NEW_ENV_TYPES),
];

fn customop(msg: String) -> RequestError {
    RequestError::new(ApiError::InvalidCustomop, msg)
}

/// A macro-step name custom operations may use: a slot, or a slot followed by one of its types.
fn valid_macro(name: &str) -> bool {
    SLOTS.iter().any(|(slot, kinds)| {
        name == *slot
            || name
                .strip_prefix(slot)
                .is_some_and(|kind| kinds.contains(&kind))
    })
}

fn number(op: &Map<String, Value>, key: &str, at: &str) -> Result<f64, RequestError> {
    match op.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(v) => v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| *n >= 0.0)
            .ok_or_else(|| customop(format!("{at}: '{key}' should be a positive number"))),
    }
}

fn text<'a>(op: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, RequestError> {
    op.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| customop(format!("{at}: '{key}' is mandatory")))
}

/// One operation of a list; `file` references are passed through `fetch` (which gives a server path).
fn operation(
    v: &Value,
    at: &str,
    fetch: &mut dyn FnMut(&str) -> Result<String, RequestError>,
) -> Result<CustomOp, RequestError> {
    let op = v
        .as_object()
        .ok_or_else(|| customop(format!("{at}: an operation should be a Hash")))?;
    let name = text(op, "name", at)?.to_string();
    let at = format!("{at}/{name}");
    let action = match text(op, "action", &at)? {
        "exec" => CustomAction::Exec {
            command: text(op, "command", &at)?.to_string(),
        },
        "send" => CustomAction::Send {
            file: fetch(text(op, "file", &at)?)?,
            destination: text(op, "destination", &at)?.to_string(),
        },
        "run" => CustomAction::Run {
            file: fetch(text(op, "file", &at)?)?,
            params: op
                .get("params")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        },
        other => {
            return Err(customop(format!(
                "{at}: invalid action '{other}' (exec, send or run)"
            )));
        }
    };
    if let Some(s) = op.get("scattering")
        && !matches!(s.as_str(), Some("tree" | "chain"))
    {
        return Err(customop(format!(
            "{at}: 'scattering' must be tree or chain"
        )));
    }
    Ok(CustomOp {
        name,
        action,
        timeout: number(op, "timeout", &at)?,
        retries: number(op, "retries", &at)? as u32,
    })
}

fn op_list(
    step: &Map<String, Value>,
    key: &str,
    at: &str,
    fetch: &mut dyn FnMut(&str) -> Result<String, RequestError>,
) -> Result<Option<Vec<CustomOp>>, RequestError> {
    match step.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| operation(v, &format!("{at}/{key}"), fetch))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(customop(format!("{at}: '{key}' should be an Array"))),
    }
}

/// Parses and validates `custom_operations` (`{macro: {micro: {substitute, pre-ops, post-ops}}}`).
pub fn custom_operations(
    v: &Value,
    fetch: &mut dyn FnMut(&str) -> Result<String, RequestError>,
) -> Result<CustomOps, RequestError> {
    let micro_names = crate::engine::plan::micro_step_names();
    let macros = v
        .as_object()
        .ok_or_else(|| customop("custom operations should be a Hash".into()))?;
    let mut out = CustomOps::new();
    for (macro_name, micros) in macros {
        if !valid_macro(macro_name) {
            return Err(customop(format!("invalid macro-step name '{macro_name}'")));
        }
        let micros = micros
            .as_object()
            .ok_or_else(|| customop(format!("{macro_name}: should be a Hash")))?;
        let mut by_micro = BTreeMap::new();
        for (micro, step) in micros {
            if !micro_names.contains(micro.as_str()) {
                return Err(customop(format!(
                    "{macro_name}: invalid micro-step name '{micro}'"
                )));
            }
            let at = format!("{macro_name}/{micro}");
            let step = step
                .as_object()
                .ok_or_else(|| customop(format!("{at}: should be a Hash")))?;
            if let Some(k) = step
                .keys()
                .find(|k| !["override", "substitute", "pre-ops", "post-ops"].contains(&k.as_str()))
            {
                return Err(customop(format!("{at}: unknown key '{k}'")));
            }
            by_micro.insert(
                micro.clone(),
                CustomMicro {
                    substitute: op_list(step, "substitute", &at, fetch)?,
                    pre: op_list(step, "pre-ops", &at, fetch)?.unwrap_or_default(),
                    post: op_list(step, "post-ops", &at, fetch)?.unwrap_or_default(),
                },
            );
        }
        out.insert(macro_name.clone(), by_micro);
    }
    Ok(out)
}

/// Parses `automata` (`{SetDeploymentEnv: [{name, retries, timeout}], BroadcastEnv: […], BootNewEnv: […]}`,
/// names like `SetDeploymentEnvUntrusted`): the forced automata.
pub fn automata(v: &Map<String, Value>) -> Result<Automata, RequestError> {
    let bad = |m: String| {
        RequestError::new(
            ApiError::InvalidOption,
            format!("Parameter 'automata': {m}"),
        )
    };
    let mut slots = Vec::new();
    for (slot, kinds) in SLOTS {
        let list = v
            .get(slot)
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad(format!("{slot} is mandatory")))?;
        let mut instances = Vec::new();
        for item in list {
            let name = item["name"].as_str().unwrap_or("");
            let kind = name
                .strip_prefix(slot)
                .filter(|k| kinds.contains(k))
                .ok_or_else(|| bad(format!("invalid {slot} implementation '{name}'")))?;
            let int = |key: &str| {
                let v = &item[key];
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .filter(|n| *n >= 0.0)
                    .ok_or_else(|| bad(format!("{name}: '{key}' should be a positive Integer")))
            };
            instances.push(MacroInstance {
                kind: kind.to_string(),
                retries: int("retries")? as u32,
                timeout: int("timeout")?,
                raisable: true,
                breakpoint: false,
                microsteps: BTreeMap::new(),
            });
        }
        slots.push(instances);
    }
    let mut it = slots.into_iter();
    Ok(Automata {
        set_deployment_env: it.next().unwrap_or_default(),
        broadcast_env: it.next().unwrap_or_default(),
        boot_new_env: it.next().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keep(f: &str) -> Result<String, RequestError> {
        Ok(f.to_string())
    }

    #[test]
    fn custom_operations_are_validated() {
        let v = json!({"SetDeploymentEnv": {"format_swap_part": {
            "substitute": [{"action": "exec", "name": "x", "command": "true"}],
            "post-ops": [{"action": "send", "name": "f", "file": "/a", "destination": "/tmp", "timeout": 5}]}}});
        let ops = custom_operations(&v, &mut keep).unwrap();
        let m = &ops["SetDeploymentEnv"]["format_swap_part"];
        assert_eq!(m.substitute.as_ref().map(Vec::len), Some(1));
        assert_eq!(m.post[0].timeout, 5.0);
        for bad in [
            json!({"Nope": {}}),
            json!({"SetDeploymentEnvUntrusted": {"nope": {}}}),
            json!({"BroadcastEnv": {"send_environment": {"pre-ops": [{"action": "exec", "name": "x"}]}}}),
            json!({"BroadcastEnv": {"send_environment": {"pre-ops": [{"action": "boom", "name": "x"}]}}}),
            json!([1]),
        ] {
            let e = custom_operations(&bad, &mut keep).unwrap_err();
            assert_eq!(e.kind, ApiError::InvalidCustomop, "{bad}");
        }
    }

    #[test]
    fn forced_automata() {
        let v = json!({"SetDeploymentEnv": [{"name": "SetDeploymentEnvUntrusted", "retries": 1, "timeout": 300}],
            "BroadcastEnv": [{"name": "BroadcastEnvKascade", "retries": 1, "timeout": 200}],
            "BootNewEnv": [{"name": "BootNewEnvClassical", "retries": 0, "timeout": 200},
                           {"name": "BootNewEnvHardReboot", "retries": 1, "timeout": 200}]});
        let a = automata(v.as_object().unwrap()).unwrap();
        assert_eq!(a.boot_new_env[1].kind, "HardReboot");
        assert_eq!(a.set_deployment_env[0].timeout, 300.0);
        let mut broken = v.as_object().unwrap().clone();
        broken.remove("BroadcastEnv");
        assert!(automata(&broken).is_err());
        broken.insert(
            "BroadcastEnv".into(),
            json!([{"name": "BroadcastEnvNope", "retries": 1, "timeout": 1}]),
        );
        assert!(automata(&broken).is_err());
    }
}
