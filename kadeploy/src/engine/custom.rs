//! Custom operations (spec §5.7): operations run before (`pre-ops`), after (`post-ops`) or instead of
//! (`substitute`) a micro-step, given by the admin in a cluster file's `automata` micro-steps or by the
//! user (`--custom-steps`), mapped to `hal` operations (`exec` → [`Operation::Exec`], `send` →
//! [`Operation::SendFile`], `run` → [`Operation::RunScript`]).

use hal::Operation;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a custom operation does.
#[derive(Clone, Debug, PartialEq)]
pub enum CustomAction {
    /// `exec`: run `command` on the nodes with the `KADEPLOY_*` variables.
    Exec {
        /// The shell command.
        command: String,
    },
    /// `send`: copy the server-side `file` to `destination/<basename>` (`$KADEPLOY_*` substituted).
    Send {
        /// Path on the server (fetched into the cache when it came from the client).
        file: String,
        /// Directory on the node.
        destination: String,
    },
    /// `run`: stream the server-side script `file` to the nodes and run it with `params`.
    Run {
        /// Path on the server.
        file: String,
        /// Arguments of the script.
        params: String,
    },
}

/// One custom operation.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomOp {
    /// `name`: the task is shown as `<micro>-<name>`.
    pub name: String,
    /// What it does.
    pub action: CustomAction,
    /// `timeout` in seconds (0: none).
    pub timeout: f64,
    /// `retries`.
    pub retries: u32,
}

/// The custom operations of one micro-step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomMicro {
    /// `substitute`: replaces the micro-step.
    pub substitute: Option<Vec<CustomOp>>,
    /// `pre-ops`.
    pub pre: Vec<CustomOp>,
    /// `post-ops`.
    pub post: Vec<CustomOp>,
    /// `override` (user operations only): these replace the admin's operations of the micro-step
    /// instead of adding to them.
    pub replaces_admin: bool,
}

impl CustomMicro {
    /// No operation at all.
    pub fn is_empty(&self) -> bool {
        self.substitute.is_none() && self.pre.is_empty() && self.post.is_empty()
    }

    /// The operations of a micro-step given the admin's (`self`, from the cluster file) and the
    /// user's: with `override` the user's alone; otherwise the admin's pre-operations then the
    /// user's, the user's substitute if any (else the admin's), the admin's post-operations then the
    /// user's.
    pub fn with_user(&self, user: Option<&CustomMicro>) -> CustomMicro {
        match user {
            None => self.clone(),
            Some(u) if u.replaces_admin => u.clone(),
            Some(u) => CustomMicro {
                substitute: u.substitute.clone().or_else(|| self.substitute.clone()),
                pre: self.pre.iter().chain(&u.pre).cloned().collect(),
                post: self.post.iter().chain(&u.post).cloned().collect(),
                replaces_admin: false,
            },
        }
    }
}

/// Custom operations by macro-step (an implementation such as `SetDeploymentEnvUntrusted`, or a slot such
/// as `SetDeploymentEnv` for all its implementations), then by micro-step name.
pub type CustomOps = BTreeMap<String, BTreeMap<String, CustomMicro>>;

/// The custom operations of micro-step `micro` in the instance `instance` of slot `slot`: the instance's
/// own entry, else the slot's.
pub fn for_micro<'a>(
    ops: &'a CustomOps,
    slot: &str,
    instance: &str,
    micro: &str,
) -> Option<&'a CustomMicro> {
    ops.get(instance)
        .and_then(|m| m.get(micro))
        .or_else(|| ops.get(slot).and_then(|m| m.get(micro)))
}

fn number<E>(
    op: &Map<String, Value>,
    key: &str,
    at: &str,
    err: &dyn Fn(String) -> E,
) -> Result<f64, E> {
    match op.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(v) => v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| *n >= 0.0)
            .ok_or_else(|| err(format!("{at}: '{key}' should be a positive number"))),
    }
}

fn text<'a, E>(
    op: &'a Map<String, Value>,
    key: &str,
    at: &str,
    err: &dyn Fn(String) -> E,
) -> Result<&'a str, E> {
    op.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err(format!("{at}: '{key}' is mandatory")))
}

/// Parses one operation (`{name, action, command|file, destination, params, timeout, retries,
/// scattering}`); `err` builds the caller's error from a message, `file` turns a `file` reference into
/// a server path.
pub fn parse_op<E>(
    v: &Value,
    at: &str,
    err: &dyn Fn(String) -> E,
    file: &mut dyn FnMut(&str) -> Result<String, E>,
) -> Result<CustomOp, E> {
    let op = v
        .as_object()
        .ok_or_else(|| err(format!("{at}: an operation should be a Hash")))?;
    let name = text(op, "name", at, err)?.to_string();
    let at = format!("{at}/{name}");
    let action = match text(op, "action", &at, err)? {
        "exec" => CustomAction::Exec {
            command: text(op, "command", &at, err)?.to_string(),
        },
        "send" => CustomAction::Send {
            file: file(text(op, "file", &at, err)?)?,
            destination: text(op, "destination", &at, err)?.to_string(),
        },
        "run" => CustomAction::Run {
            file: file(text(op, "file", &at, err)?)?,
            params: op
                .get("params")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        },
        other => {
            return Err(err(format!(
                "{at}: invalid action '{other}' (exec, send or run)"
            )));
        }
    };
    if let Some(s) = op.get("scattering")
        && !matches!(s.as_str(), Some("tree" | "chain"))
    {
        return Err(err(format!("{at}: 'scattering' must be tree or chain")));
    }
    Ok(CustomOp {
        name,
        action,
        timeout: number(op, "timeout", &at, err)?,
        retries: number(op, "retries", &at, err)? as u32,
    })
}

/// Parses the list `key` (`substitute`, `pre-ops`, `post-ops`) of a micro-step's entry at `at`:
/// `None` when absent.
pub fn parse_op_list<E>(
    list: Option<&Value>,
    key: &str,
    at: &str,
    err: &dyn Fn(String) -> E,
    file: &mut dyn FnMut(&str) -> Result<String, E>,
) -> Result<Option<Vec<CustomOp>>, E> {
    match list {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| parse_op(v, &format!("{at}/{key}"), err, file))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(err(format!("{at}: '{key}' should be an Array"))),
    }
}

/// Replaces `$NAME` and `${NAME}` by the values of `env` (longest names first).
pub fn substitute(text: &str, env: &[(String, String)]) -> String {
    let mut vars: Vec<&(String, String)> = env.iter().collect();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
        out = out.replace(&format!("${k}"), v);
    }
    out
}

/// The `hal` operation of `action`, or why it cannot run (an unreadable server-side file).
pub fn operation(action: &CustomAction, env: Vec<(String, String)>) -> Result<Operation, String> {
    Ok(match action {
        CustomAction::Exec { command } => Operation::Exec {
            command: command.clone(),
            env,
        },
        CustomAction::Send { file, destination } => {
            let size = std::fs::metadata(file)
                .map_err(|e| format!("custom operation file {file}: {e}"))?
                .len();
            let base = std::path::Path::new(file)
                .file_name()
                .map(|b| b.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dir = substitute(destination, &env);
            Operation::SendFile {
                source: file.clone(),
                destination: format!("{}/{base}", dir.trim_end_matches('/')),
                size,
            }
        }
        CustomAction::Run { file, params } => {
            let script = std::fs::read_to_string(file)
                .map_err(|e| format!("custom operation file {file}: {e}"))?;
            let script = if params.trim().is_empty() {
                script
            } else {
                format!("set -- {params}\n{script}")
            };
            Operation::RunScript {
                purpose: "custom".into(),
                script,
                env,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str) -> CustomOp {
        CustomOp {
            name: name.into(),
            action: CustomAction::Exec {
                command: "true".into(),
            },
            timeout: 0.0,
            retries: 0,
        }
    }

    #[test]
    fn user_operations_add_to_the_admins_unless_they_override() {
        let admin = CustomMicro {
            substitute: Some(vec![op("admin-sub")]),
            pre: vec![op("admin-pre")],
            post: vec![op("admin-post")],
            replaces_admin: false,
        };
        let mut user = CustomMicro {
            pre: vec![op("user-pre")],
            post: vec![op("user-post")],
            ..CustomMicro::default()
        };
        let names = |ops: &[CustomOp]| ops.iter().map(|o| o.name.clone()).collect::<Vec<_>>();
        let merged = admin.with_user(Some(&user));
        assert_eq!(names(&merged.pre), ["admin-pre", "user-pre"]);
        assert_eq!(names(&merged.post), ["admin-post", "user-post"]);
        assert_eq!(names(merged.substitute.as_deref().unwrap()), ["admin-sub"]);
        user.substitute = Some(vec![op("user-sub")]);
        let merged = admin.with_user(Some(&user));
        assert_eq!(names(merged.substitute.as_deref().unwrap()), ["user-sub"]);
        user.replaces_admin = true;
        assert_eq!(admin.with_user(Some(&user)), user);
        assert_eq!(admin.with_user(None), admin);
        assert!(CustomMicro::default().is_empty() && !admin.is_empty());
    }

    #[test]
    fn operations_are_parsed_with_the_callers_errors() {
        let err = |m: String| m;
        let mut keep = |f: &str| Ok(format!("/srv/{f}"));
        let list = serde_json::json!([
            {"name": "p", "action": "run", "file": "part.sh", "params": "-x", "timeout": 16, "retries": "1"},
            {"name": "s", "action": "send", "file": "f", "destination": "/mnt", "scattering": "chain"}
        ]);
        let ops = parse_op_list(Some(&list), "substitute", "M/m", &err, &mut keep)
            .unwrap()
            .unwrap();
        assert_eq!(
            ops[0].action,
            CustomAction::Run {
                file: "/srv/part.sh".into(),
                params: "-x".into()
            }
        );
        assert_eq!((ops[0].timeout, ops[0].retries), (16.0, 1));
        assert_eq!(
            parse_op_list(None, "pre-ops", "M/m", &err, &mut keep),
            Ok(None)
        );
        for (bad, message) in [
            (serde_json::json!(1), "M/m: 'pre-ops' should be an Array"),
            (
                serde_json::json!([{"name": "x", "action": "exec"}]),
                "M/m/pre-ops/x: 'command' is mandatory",
            ),
            (
                serde_json::json!([{"name": "x", "action": "exec", "command": "c", "scattering": "star"}]),
                "M/m/pre-ops/x: 'scattering' must be tree or chain",
            ),
            (
                serde_json::json!([{"name": "x", "action": "exec", "command": "c", "timeout": -1}]),
                "M/m/pre-ops/x: 'timeout' should be a positive number",
            ),
        ] {
            assert_eq!(
                parse_op_list(Some(&bad), "pre-ops", "M/m", &err, &mut keep),
                Err(message.to_string())
            );
        }
    }

    #[test]
    fn substitution_prefers_longest_names() {
        let env = vec![
            ("KADEPLOY_ENV".to_string(), "debian".to_string()),
            (
                "KADEPLOY_ENV_EXTRACTION_DIR".to_string(),
                "/mnt/dest".to_string(),
            ),
        ];
        assert_eq!(
            substitute("$KADEPLOY_ENV_EXTRACTION_DIR/etc ${KADEPLOY_ENV}", &env),
            "/mnt/dest/etc debian"
        );
    }

    #[test]
    fn actions_map_to_hal_operations() {
        let op = operation(
            &CustomAction::Exec {
                command: "true".into(),
            },
            vec![],
        )
        .unwrap();
        assert_eq!(op.name(), "exec");
        let missing = CustomAction::Send {
            file: "/nonexistent/f".into(),
            destination: "/tmp".into(),
        };
        assert!(operation(&missing, vec![]).is_err());
        let dir = std::env::temp_dir().join(format!("kadeploy-custom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s.sh");
        std::fs::write(&f, "echo $1\n").unwrap();
        let file = f.display().to_string();
        let send = CustomAction::Send {
            file: file.clone(),
            destination: "$D/x/".into(),
        };
        let env = vec![("D".to_string(), "/mnt".to_string())];
        assert_eq!(
            operation(&send, env.clone()).unwrap(),
            Operation::SendFile {
                source: file.clone(),
                destination: "/mnt/x/s.sh".into(),
                size: 8
            }
        );
        let run = CustomAction::Run {
            file,
            params: "a b".into(),
        };
        match operation(&run, env).unwrap() {
            Operation::RunScript { script, .. } => assert_eq!(script, "set -- a b\necho $1\n"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
