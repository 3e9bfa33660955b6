//! Custom operations (spec §5.7, `--custom-steps`): user operations run before (`pre-ops`), after
//! (`post-ops`) or instead of (`substitute`) a micro-step, mapped to `hal` operations (`exec` →
//! [`Operation::Exec`], `send` → [`Operation::SendFile`], `run` → [`Operation::RunScript`]).

use hal::Operation;
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
