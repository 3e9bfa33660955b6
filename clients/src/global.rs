//! Kadeploy's generic options, shared by every client (`Client.global_parse_options`, spec §2.1):
//! `-v`, `-I`, `-M`, `-H/--[no-]debug-http`, `-S`, `--[no-]dry-run`, `--password [PASSWORD]`, and what
//! they do before the client's own work: the version, the server information, the choice of servers.

use crate::{Api, ClientEnv, ClientError, Connection};
use clap::Args;
use reqwest::Method;
use serde_json::Value;
use std::io::IsTerminal as _;

/// The generic options of every client.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Get the server's version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Get information about the server's configuration.
    #[arg(short = 'I', long = "server-info")]
    pub server_info: bool,
    /// Activate the multi-server mode (every server of client.conf).
    #[arg(short = 'M', long = "multi-server")]
    pub multi_server: bool,
    /// Debug HTTP communications with the server (to fd 4 when open, else stdout).
    #[arg(short = 'H', long = "debug-http", overrides_with = "no_debug_http")]
    pub debug_http: bool,
    /// Do not debug HTTP communications.
    #[arg(long = "no-debug-http", overrides_with = "debug_http")]
    pub no_debug_http: bool,
    /// Specify the Kadeploy server to use.
    #[arg(short = 'S', long = "server")]
    pub server: Option<String>,
    /// Perform a dry run (`dry_run: true`: the server checks the request and does nothing).
    #[arg(long = "dry-run", overrides_with = "no_dry_run")]
    pub dry_run: bool,
    /// Do not perform a dry run.
    #[arg(long = "no-dry-run", overrides_with = "dry_run")]
    pub no_dry_run: bool,
    /// A password for HTTP Basic authentication (read from the terminal when not given).
    #[arg(long = "password", num_args = 0..=1, value_name = "PASSWORD")]
    pub password: Option<Option<String>>,
}

impl GlobalArgs {
    /// How to talk to the servers: the Basic credentials (reading the password when needed) and the
    /// HTTP trace.
    pub fn connection(&self) -> Result<Connection, ClientError> {
        let password = match &self.password {
            None => None,
            Some(Some(p)) => Some(p.clone()),
            Some(None) => Some(read_password()?),
        };
        Ok(Connection {
            password,
            debug_http: self.debug_http,
        })
    }

    /// Connects to the chosen server, or to every reachable server of client.conf with `-M` (each
    /// labelled with its name; unreachable ones are dropped with a message).
    pub async fn connect(&self, env: &ClientEnv) -> Result<Vec<Api>, ClientError> {
        let how = self.connection()?;
        if !self.multi_server {
            return Ok(vec![Api::open(env, self.server.as_deref(), &how).await?]);
        }
        let mut apis = Vec::new();
        for name in crate::server_names(env)? {
            match Api::open(env, Some(&name), &how).await {
                Ok(mut api) => {
                    api.label = Some(name);
                    apis.push(api);
                }
                Err(ClientError::Unreachable(m)) => println!("{m}"),
                Err(e) => return Err(e),
            }
        }
        Ok(apis)
    }

    /// Answers `-v` and `-I` (on every server with `-M`); true when one of them was given. With
    /// `KADEPLOY3_VERSION` set, `-v` prints it without contacting any server.
    pub async fn answer_info(&self, env: &ClientEnv) -> Result<bool, ClientError> {
        if !self.version && !self.server_info {
            return Ok(false);
        }
        if self.version
            && let Ok(v) = std::env::var("KADEPLOY3_VERSION")
        {
            println!("{v}");
            return Ok(true);
        }
        let apis = self.connect(env).await?;
        for api in &apis {
            let prefix = match (&api.label, self.multi_server) {
                (_, true) => format!("({}) ", api.host()),
                _ => String::new(),
            };
            if self.version {
                let v = api.text(Method::GET, "/version", &[], None).await?;
                println!("{prefix}Kadeploy version: {}", v.trim());
            } else {
                let info = api.json(Method::GET, "/info", &[], None).await?;
                print!("{}", server_info(&info, &prefix));
            }
        }
        Ok(true)
    }
}

/// Reads the password from the terminal with echo off (`stty -echo`), as Kadeploy's client does.
fn read_password() -> Result<String, ClientError> {
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Usage(
            "Error: no password specified and invalid STDIN".into(),
        ));
    }
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    print!("Password: ");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    let _ = stty("echo");
    println!();
    read.map_err(|e| ClientError::Usage(format!("reading the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The `-I` summary of `GET /info` (`Client.do_info`), each line prefixed with `prefix`.
pub fn server_info(info: &Value, prefix: &str) -> String {
    let mut out = format!("{prefix}Kadeploy server configuration:\n");
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    out += &format!("{prefix}  Custom PXE boot method: {}\n", text(&info["pxe"]));
    out += &format!("{prefix}  Automata configuration:\n");
    for (cluster, macros) in info["automata"].as_object().into_iter().flatten() {
        out += &format!("{prefix}    {cluster}:\n");
        for (name, steps) in macros.as_object().into_iter().flatten() {
            let steps: Vec<String> = (steps.as_array().into_iter().flatten())
                .map(|s| {
                    let values: Vec<String> = s
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(_, v)| text(v))
                        .collect();
                    values.join(",")
                })
                .collect();
            out += &format!("{prefix}      {name}: {}\n", steps.join("; "));
        }
    }
    out += &format!("{prefix}  Deployment environment:\n");
    out += &format!("{prefix}    Supported file systems:\n");
    for (cluster, fs) in info["supported_fs"].as_object().into_iter().flatten() {
        let fs: Vec<String> = fs.as_array().into_iter().flatten().map(text).collect();
        out += &format!("{prefix}      {cluster}: {}\n", fs.join(","));
    }
    out += &format!("{prefix}    Variables exported to custom scripts:\n");
    let vars: Vec<String> = info["vars"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    out += &array_lines(&vars, &format!("{prefix}      "), 80);
    out
}

/// `Client.print_arraystr`: values joined with `, `, wrapped before `width` columns, each line
/// starting with `prefix`.
fn array_lines(values: &[String], prefix: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line: Option<String> = None;
    for v in values {
        line = Some(match line {
            None => format!("{prefix}{v}"),
            Some(l) if l.len() + v.len() + 2 > width => {
                out += &l;
                out.push('\n');
                format!("{prefix}{v}")
            }
            Some(l) => format!("{l}, {v}"),
        });
    }
    if let Some(l) = line {
        out += &l;
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_info_is_printed_as_kadeploy_does() {
        let info = json!({
            "pxe": "PXElinux",
            "automata": {"c1": {"SetDeploymentEnv": [{"name": "SetDeploymentEnvUntrusted", "retries": 1, "timeout": 200}],
                                "BootNewEnv": [{"name": "BootNewEnvKexec", "retries": 0, "timeout": 200},
                                               {"name": "BootNewEnvHardReboot", "retries": 1, "timeout": 200}]}},
            "supported_fs": {"c1": ["ext3", "ext4"]},
            "vars": ["KADEPLOY_A", "KADEPLOY_B"]
        });
        let text = server_info(&info, "");
        assert!(
            text.starts_with(
                "Kadeploy server configuration:\n  Custom PXE boot method: PXElinux\n"
            )
        );
        assert!(
            text.contains("      BootNewEnv: BootNewEnvKexec,0,200; BootNewEnvHardReboot,1,200\n")
        );
        assert!(text.contains("      c1: ext3,ext4\n"));
        assert!(text.ends_with(
            "    Variables exported to custom scripts:\n      KADEPLOY_A, KADEPLOY_B\n"
        ));
    }

    #[test]
    fn long_variable_lists_wrap_at_80_columns() {
        let vars: Vec<String> = (0..20)
            .map(|i| format!("KADEPLOY_VARIABLE_{i:02}"))
            .collect();
        let text = array_lines(&vars, "      ", 80);
        assert!(text.lines().count() > 1);
        assert!(
            text.lines()
                .all(|l| l.len() <= 80 && l.starts_with("      KADEPLOY_"))
        );
    }
}
