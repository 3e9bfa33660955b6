//! `kaenv3` (spec §2.5): options, the environment requests, and their outputs.

use super::*;

/// `kaenv3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kaenv3",
    about = "Manage the environment catalogue",
    disable_version_flag = true
)]
pub struct EnvCli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Add the environment described in FILE.
    #[arg(short = 'a', long = "add")]
    add: Option<String>,
    /// Delete an environment (last version unless -s).
    #[arg(short = 'd', long = "delete")]
    delete: Option<String>,
    /// List environments (optionally by name, `%` wildcard).
    #[arg(short = 'l', long = "list", num_args = 0..=1, default_missing_value = "")]
    list: Option<String>,
    /// Files to move (`src1::dst1,src2::dst2,...`), with --move-files.
    #[arg(short = 'm', long = "files-to-move", value_parser = files_to_move)]
    files_to_move: Option<Moves>,
    /// Print an environment's description.
    #[arg(short = 'p', long = "print")]
    print: Option<String>,
    /// Every version.
    #[arg(short = 's', long = "all-versions")]
    all_versions: bool,
    /// Visibility for --set-visibility-tag.
    #[arg(short = 't', long = "visibility-tag", value_parser = ["private", "shared", "public"])]
    visibility: Option<String>,
    /// Owner.
    #[arg(short = 'u', long = "env-user")]
    user: Option<String>,
    /// Version.
    #[arg(long = "env-version")]
    env_version: Option<u32>,
    /// Toggle the destructive tag.
    #[arg(long = "toggle-destructive-tag")]
    toggle_destructive: Option<String>,
    /// Set the visibility (with -t).
    #[arg(long = "set-visibility-tag")]
    set_visibility: Option<String>,
    /// Update the checksum of the environment's image.
    #[arg(long = "update-image-checksum")]
    update_image: Option<String>,
    /// Update the checksum of the environment's preinstall.
    #[arg(long = "update-preinstall-checksum")]
    update_preinstall: Option<String>,
    /// Update the checksums of the environment's postinstalls.
    #[arg(long = "update-postinstalls-checksum")]
    update_postinstalls: Option<String>,
    /// Move the files of the environments (administrators only), as -m says.
    #[arg(long = "move-files")]
    move_files: bool,
    #[command(flatten)]
    secure: SecureArgs,
}

/// `kaenv3 -m`: the `src::dst` prefix pairs.
#[derive(Clone, Debug)]
pub struct Moves(Vec<(String, String)>);

/// The `-m` syntax (`\A.+::.+(,.+::.+)*\Z`): `src::dst` pairs.
fn files_to_move(v: &str) -> Result<Moves, String> {
    v.split(',')
        .map(|pair| match pair.split_once("::") {
            Some((src, dst)) if !src.is_empty() && !dst.is_empty() => {
                Ok((src.to_string(), dst.to_string()))
            }
            _ => Err("Invalid synthax for files to move".to_string()),
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Moves)
}

/// A `kaenv3` modification of one environment (`PUT /environments/<U>/<NAME>[/<V>]`).
#[derive(Debug, PartialEq)]
pub enum EnvChange {
    /// `--toggle-destructive-tag`.
    ToggleDestructive,
    /// `--set-visibility-tag` with `-t`.
    Visibility(String),
    /// `--update-image-checksum`.
    ImageChecksum,
    /// `--update-preinstall-checksum`.
    PreinstallChecksum,
    /// `--update-postinstalls-checksum`.
    PostinstallsChecksum,
}

impl EnvChange {
    /// The request body: the change, plus `last: true` when no version is named.
    pub fn body(&self, version: Option<u32>) -> Value {
        let mut b = match self {
            EnvChange::ToggleDestructive => json!({"toggle_destructive": true}),
            EnvChange::Visibility(v) => json!({"visibility": v}),
            EnvChange::ImageChecksum => json!({"update_image_checksum": true}),
            EnvChange::PreinstallChecksum => json!({"update_preinstall_checksum": true}),
            EnvChange::PostinstallsChecksum => json!({"update_postinstalls_checksum": true}),
        };
        if version.is_none() {
            b["last"] = json!(true);
        }
        b
    }

    /// Checksum updates read the environment's files again: local ones are exported.
    fn reads_files(&self) -> bool {
        !matches!(
            self,
            EnvChange::ToggleDestructive | EnvChange::Visibility(_)
        )
    }
}

impl EnvCli {
    /// The modification asked for, with the environment's name.
    pub(super) fn change(&self) -> Result<Option<(&String, EnvChange)>, ClientError> {
        Ok(Some(if let Some(n) = &self.toggle_destructive {
            (n, EnvChange::ToggleDestructive)
        } else if let Some(n) = &self.set_visibility {
            let v = (self.visibility.clone())
                .ok_or_else(|| usage("You must define the visibility value"))?;
            (n, EnvChange::Visibility(v))
        } else if let Some(n) = &self.update_image {
            (n, EnvChange::ImageChecksum)
        } else if let Some(n) = &self.update_preinstall {
            (n, EnvChange::PreinstallChecksum)
        } else if let Some(n) = &self.update_postinstalls {
            (n, EnvChange::PostinstallsChecksum)
        } else {
            return Ok(None);
        }))
    }

    /// `--move-files`: the `PUT /environments` body.
    pub fn move_body(&self) -> Result<Value, ClientError> {
        let pairs = (self.files_to_move.as_ref())
            .map(|m| &m.0)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| usage("You must define some files to move"))?;
        let map: Map<String, Value> = pairs.iter().map(|(s, d)| (s.clone(), json!(d))).collect();
        Ok(json!({"update_files": map}))
    }
}

/// Starts the file server for `files` (the local ones) and adds `client` to `body`.
async fn export_for(
    api: &Api,
    files: Vec<String>,
    secure: bool,
    body: &mut Value,
) -> Result<Option<export::FileServer>, ClientError> {
    let files: Vec<String> = files.into_iter().filter(|f| export::is_local(f)).collect();
    if files.is_empty() {
        return Ok(None);
    }
    let files: Vec<String> = files.iter().map(|f| export::absolute(f)).collect();
    let server = export::start(&files, &api.local_address()?, secure).await?;
    body["client"] = json!(server.url);
    Ok(Some(server))
}

/// Runs `kaenv3`.
pub fn kaenv(args: &[String], env: &ClientEnv) -> i32 {
    tool(
        "kaenv3",
        args,
        env,
        |c: &EnvCli| &c.global,
        async |api, cli: &EnvCli| {
            let g = &cli.global;
            let owner = cli.user.clone().unwrap_or_else(|| api.user.clone());
            let path = |name: &str| {
                let v = cli.env_version.map(|v| format!("/{v}")).unwrap_or_default();
                format!("/environments/{}/{}{v}", enc(&owner), enc(name))
            };
            let last = if cli.env_version.is_none() && !cli.all_versions {
                json!({"last": true})
            } else {
                json!({})
            };
            if let Some(file) = &cli.add {
                let text =
                    std::fs::read_to_string(file).map_err(|e| usage(&format!("{file}: {e}")))?;
                let desc: Value =
                    serde_saphyr::from_str(&text).map_err(|e| usage(&format!("{file}: {e}")))?;
                let (_, warnings) = kadeploy::envdesc::EnvDesc::from_value(&desc).map_err(|e| {
                    ClientError::Api(7, format!("Error[environment description] {}", e.detail))
                })?;
                warnings.iter().for_each(|w| eprintln!("{w}"));
                let body = dry_run_body(g, json!({"environment": desc}));
                api.json(Method::POST, "/environments", &[], Some(&body))
                    .await?;
            } else if cli.list.is_some() || cli.print.is_some() {
                let mut q = Vec::new();
                if let Some(u) = &cli.user {
                    q.push(("username", u.clone()));
                }
                if let Some(n) = cli
                    .list
                    .as_ref()
                    .filter(|n| !n.is_empty())
                    .or(cli.print.as_ref())
                {
                    q.push(("name", n.clone()));
                }
                match cli.env_version {
                    Some(v) => q.push(("version", v.to_string())),
                    None if !cli.all_versions => q.push(("last", "true".into())),
                    None => {}
                }
                dry_run_query(g, &mut q);
                let envs = match api.json(Method::GET, "/environments", &q, None).await {
                    Err(ClientError::Http(404, _)) => json!([]),
                    r => r?,
                };
                if g.dry_run {
                    return Ok(());
                }
                print_envs(&envs, cli.print.is_some(), &owner);
            } else if let Some(name) = &cli.delete {
                let body = dry_run_body(g, last);
                api.json(Method::DELETE, &path(name), &[], Some(&body))
                    .await?;
            } else if let Some((name, change)) = cli.change()? {
                let mut body = dry_run_body(g, change.body(cli.env_version));
                let mut _files = None;
                if change.reads_files() {
                    let mut q = vec![("username", owner.clone()), ("name", name.clone())];
                    match cli.env_version {
                        Some(v) => q.push(("version", v.to_string())),
                        None => q.push(("last", "true".into())),
                    }
                    let found = api.json(Method::GET, "/environments", &q, None).await?;
                    if let Some(e) = found.as_array().and_then(|a| a.first()) {
                        let mut stored = Map::new();
                        stored.insert("environment".into(), e.clone());
                        let files = export::collect(&mut stored);
                        _files = export_for(api, files, cli.secure.secure, &mut body).await?;
                    }
                }
                api.json(Method::PUT, &path(name), &[], Some(&body)).await?;
            } else if cli.move_files {
                let body = dry_run_body(g, cli.move_body()?);
                let moved = api
                    .json(Method::PUT, "/environments", &[], Some(&body))
                    .await?;
                for e in moved.as_array().into_iter().flatten() {
                    println!("{} v{}", e["name"].as_str().unwrap_or(""), e["version"]);
                }
            } else {
                return Err(usage("You must choose an operation"));
            }
            Ok(())
        },
    )
}

/// `kaenv3 -l` (the table) or `-p` (one description in YAML, the user's own first).
fn print_envs(envs: &Value, print: bool, owner: &str) {
    let envs = envs.as_array().cloned().unwrap_or_default();
    if envs.is_empty() {
        println!("No environment has been found");
    } else if print {
        let mine = envs
            .iter()
            .find(|e| e["user"] == json!(owner))
            .unwrap_or(&envs[0])
            .clone();
        let mut e = mine;
        if let Some(m) = e.as_object_mut() {
            m.remove("user");
        }
        print!("{}", kadeploy::wire::to_yaml(&e));
    } else {
        println!("{:<21} {:<7} {:<11} Description", "Name", "Version", "User");
        println!("{:<21} {:<7} {:<11} ###########", "####", "#######", "####");
        for e in envs {
            let d: String = e["description"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(35)
                .collect();
            println!(
                "{:<21} {:<7} {:<11} {d}",
                e["name"].as_str().unwrap_or(""),
                e["version"].to_string(),
                e["user"].as_str().unwrap_or("")
            );
        }
    }
}
