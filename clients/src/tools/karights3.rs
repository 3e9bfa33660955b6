//! `karights3` (spec §2.6): options, the rights requests, and the `-l` table.

use super::*;

/// `karights3` options.
#[derive(Parser, Debug)]
#[command(
    name = "karights3",
    about = "Manage rights",
    disable_version_flag = true
)]
pub struct RightsCli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Add rights.
    #[arg(short = 'a', long = "add")]
    add: bool,
    /// Delete rights.
    #[arg(short = 'd', long = "delete")]
    delete: bool,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// List rights.
    #[arg(short = 'l', long = "list")]
    list: bool,
    /// Node (`*` = all), repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// Replace other users' rights.
    #[arg(short = 'o', long = "overwrite-rights")]
    overwrite: bool,
    /// Partition (`*` = all), repeatable.
    #[arg(short = 'p', long = "part")]
    parts: Vec<String>,
    /// User.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
}

impl RightsCli {
    /// The request body (`KarightsClient.prepare`): `*` nodes and partitions mean no filter.
    pub fn body(&self) -> Result<Value, ClientError> {
        let machines: Vec<String> = (self.machines.iter())
            .filter(|m| m.trim() != "*")
            .cloned()
            .collect();
        let list = nodes(&machines, &self.files)?;
        let parts: Vec<&String> = self.parts.iter().filter(|p| p.trim() != "*").collect();
        let mut body = json!({});
        if !list.is_empty() {
            body["nodes"] = json!(list);
        }
        if !parts.is_empty() && !self.list {
            body["partitions"] = json!(parts);
        }
        if self.add {
            body["username"] = json!(
                self.user
                    .clone()
                    .ok_or_else(|| usage("You must choose a user"))?
            );
        }
        if self.overwrite {
            body["overwrite"] = json!(true);
        }
        Ok(dry_run_body(&self.global, body))
    }
}

/// `karights3 -l` output (`print_headers`, `print_rights`).
pub fn rights_table(rights: &Value) -> String {
    let mut out = format!("{:<15} {:<41} Partitions\n", "User", "Node");
    out += &format!("{:<15} {:<41} ##########\n", "####", "####");
    for (u, nodes) in rights.as_object().into_iter().flatten() {
        for (n, parts) in nodes.as_object().into_iter().flatten() {
            let parts: Vec<&str> = (parts.as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect();
            out += &format!("{u:<15} {n:<41} {}\n", parts.join(","));
        }
    }
    out
}

/// Runs `karights3`.
pub fn karights(args: &[String], env: &ClientEnv) -> i32 {
    tool(
        "karights3",
        args,
        env,
        |c: &RightsCli| &c.global,
        async |api, cli: &RightsCli| {
            let body = cli.body()?;
            if cli.add {
                api.json(Method::POST, "/rights", &[], Some(&body)).await?;
            } else if cli.delete {
                let u = cli
                    .user
                    .clone()
                    .ok_or_else(|| usage("You must choose a user"))?;
                api.json(
                    Method::DELETE,
                    &format!("/rights/{}", enc(&u)),
                    &[],
                    Some(&body),
                )
                .await?;
            } else if cli.list {
                if body.get("nodes").is_some() {
                    return Err(usage(
                        "Node list is useless when showing rights of a specific user",
                    ));
                }
                let path = cli
                    .user
                    .as_ref()
                    .map(|u| format!("/rights/{}", enc(u)))
                    .unwrap_or_else(|| "/rights".into());
                let mut q = Vec::new();
                dry_run_query(&cli.global, &mut q);
                let rights = api.json(Method::GET, &path, &q, None).await?;
                if !cli.global.dry_run {
                    print!("{}", api.labelled(rights_table(&rights).trim_end()));
                    println!();
                }
            } else {
                return Err(usage("You must choose an operation"));
            }
            Ok(())
        },
    )
}
