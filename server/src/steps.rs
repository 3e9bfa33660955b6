//! The request fields that reshape a deployment's automata (spec §3.7, §5.7): `custom_operations`
//! (error 8 when invalid) and `automata` (`--force-steps`, error 4 when invalid).

use super::workflow::Kind;
use kadeploy::config::{
    Automata, BOOT_NEW_ENV_TYPES, BROADCAST_ENV_TYPES, MacroInstance, MacroKind,
    SET_DEPLOYMENT_ENV_TYPES,
};
use kadeploy::engine::custom::{CustomMicro, CustomOps, parse_op_list};
use kadeploy::engine::{PowerOperation, RebootKind};
use kadeploy::error::{ApiError, RequestError};
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

/// A macro-step name the custom operations of a `kind` workflow may use: for a deployment a slot, or a
/// slot followed by one of its types (`SetDeploymentEnv`, `SetDeploymentEnvUntrusted`); for a reboot
/// `Reboot` or one of its kinds (`RebootSetPXE`); for a power operation `Power` or one of its operations
/// (`PowerOn`).
fn valid_macro(kind: Kind, name: &str) -> bool {
    match kind {
        Kind::Deploy => SLOTS.iter().any(|(slot, kinds)| {
            name == *slot
                || name
                    .strip_prefix(slot)
                    .is_some_and(|kind| kinds.contains(&kind))
        }),
        Kind::Reboot => name == "Reboot" || RebootKind::ALL.iter().any(|k| k.step_name() == name),
        Kind::Power => name == "Power" || PowerOperation::ALL.iter().any(|o| o.step_name() == name),
    }
}

/// Parses and validates `custom_operations` (`{macro: {micro: {substitute, pre-ops, post-ops}}}`).
pub fn custom_operations(
    v: &Value,
    kind: Kind,
    fetch: &mut dyn FnMut(&str) -> Result<String, RequestError>,
) -> Result<CustomOps, RequestError> {
    let micro_names = kadeploy::engine::plan::micro_step_names();
    let macros = v
        .as_object()
        .ok_or_else(|| customop("custom operations should be a Hash".into()))?;
    let mut out = CustomOps::new();
    for (macro_name, micros) in macros {
        if !valid_macro(kind, macro_name) {
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
            let list = |key: &str, fetch: &mut dyn FnMut(&str) -> Result<String, RequestError>| {
                parse_op_list(step.get(key), key, &at, &customop, fetch)
            };
            if let Some(k) = step
                .keys()
                .find(|k| !["override", "substitute", "pre-ops", "post-ops"].contains(&k.as_str()))
            {
                return Err(customop(format!("{at}: unknown key '{k}'")));
            }
            by_micro.insert(
                micro.clone(),
                CustomMicro {
                    substitute: list("substitute", fetch)?,
                    pre: list("pre-ops", fetch)?.unwrap_or_default(),
                    post: list("post-ops", fetch)?.unwrap_or_default(),
                    replaces_admin: match step.get("override") {
                        None | Some(Value::Null) => false,
                        Some(Value::Bool(b)) => *b,
                        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
                        Some(_) => {
                            return Err(customop(format!("{at}: 'override' should be a Boolean")));
                        }
                    },
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
    for (slot, _) in SLOTS {
        let list = v
            .get(slot)
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad(format!("{slot} is mandatory")))?;
        let mut instances = Vec::new();
        for item in list {
            let name = item["name"].as_str().unwrap_or("");
            let kind = MacroKind::from_instance_name(name)
                .filter(|k| k.slot().name() == slot)
                .ok_or_else(|| bad(format!("invalid {slot} implementation '{name}'")))?;
            let int = |key: &str| {
                let v = &item[key];
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .filter(|n| *n >= 0.0)
                    .ok_or_else(|| bad(format!("{name}: '{key}' should be a positive Integer")))
            };
            instances.push(MacroInstance {
                kind,
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
        let ops = custom_operations(&v, Kind::Deploy, &mut keep).unwrap();
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
            let e = custom_operations(&bad, Kind::Deploy, &mut keep).unwrap_err();
            assert_eq!(e.kind, ApiError::InvalidCustomop, "{bad}");
        }
    }

    #[test]
    fn reboot_and_power_operations_name_their_own_macro_steps() {
        let on = |m: &str| json!({m: {"reboot": {"post-ops": [{"action": "exec", "name": "x", "command": "true"}]}}});
        for (kind, ok, bad) in [
            (Kind::Reboot, ["Reboot", "RebootSetPXE"], "SetDeploymentEnv"),
            (Kind::Power, ["Power", "PowerOff"], "RebootSimple"),
        ] {
            for m in ok {
                assert!(custom_operations(&on(m), kind, &mut keep).is_ok(), "{m}");
            }
            let e = custom_operations(&on(bad), kind, &mut keep).unwrap_err();
            assert_eq!(e.kind, ApiError::InvalidCustomop);
        }
        let over = json!({"Reboot": {"reboot": {"override": true, "pre-ops": []}}});
        let ops = custom_operations(&over, Kind::Reboot, &mut keep).unwrap();
        assert!(ops["Reboot"]["reboot"].replaces_admin);
        let bad = json!({"Reboot": {"reboot": {"override": 3}}});
        assert!(custom_operations(&bad, Kind::Reboot, &mut keep).is_err());
    }

    #[test]
    fn forced_automata() {
        let v = json!({"SetDeploymentEnv": [{"name": "SetDeploymentEnvUntrusted", "retries": 1, "timeout": 300}],
            "BroadcastEnv": [{"name": "BroadcastEnvKascade", "retries": 1, "timeout": 200}],
            "BootNewEnv": [{"name": "BootNewEnvClassical", "retries": 0, "timeout": 200},
                           {"name": "BootNewEnvHardReboot", "retries": 1, "timeout": 200}]});
        let a = automata(v.as_object().unwrap()).unwrap();
        assert_eq!(a.boot_new_env[1].kind.to_string(), "HardReboot");
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
