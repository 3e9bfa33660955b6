//! `kanodes3` (spec §2.8): options, the node status queries, and their outputs.

use super::*;

/// `kanodes3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kanodes3",
    about = "Node states and workflow status",
    disable_version_flag = true
)]
pub struct NodesCli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Status of every deployment, reboot, power and console operation.
    #[arg(short = 'a', long = "get-all-status")]
    all: bool,
    /// Console status.
    #[arg(short = 'c', long = "get-consoles-status")]
    console: bool,
    /// Deployment status.
    #[arg(
        short = 'd',
        long = "get-deployments-status",
        visible_alias = "get-deploy-status"
    )]
    deploy: bool,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// Node, repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// Power status.
    #[arg(
        short = 'p',
        long = "get-powers-status",
        visible_alias = "get-power-status"
    )]
    power: bool,
    /// Reboot status.
    #[arg(
        short = 'r',
        long = "get-reboots-status",
        visible_alias = "get-reboot-status"
    )]
    reboot: bool,
    /// Node states.
    #[arg(short = 's', long = "get-nodes-state")]
    state: bool,
    /// One workflow.
    #[arg(short = 'w', long = "workflow-id")]
    wid: Option<String>,
}

/// What `kanodes3` asks for.
#[derive(Debug, PartialEq)]
pub enum NodesQuery {
    /// `-s`: `GET /nodes` with the nodes in the query.
    States(Vec<(&'static str, String)>),
    /// `-d`, `-r`, `-p`, `-c`: one status path.
    Status(String),
    /// `-a`: every status, as JSON.
    All(Vec<&'static str>),
}

impl NodesCli {
    /// The request(s) of the chosen option.
    pub fn query(&self) -> Result<NodesQuery, ClientError> {
        let list = nodes(&self.machines, &self.files)?;
        let mut dry = Vec::new();
        dry_run_query(&self.global, &mut dry);
        if self.state {
            if self.wid.is_some() {
                return Err(usage("-w cannot be used with -s"));
            }
            let mut q: Vec<(&str, String)> = list.into_iter().map(|n| ("nodes", n)).collect();
            q.extend(dry);
            return Ok(NodesQuery::States(q));
        }
        if !list.is_empty() {
            return Err(usage("Node list is useless when gathering statuses"));
        }
        if self.all {
            return Ok(NodesQuery::All(vec![
                "/deployment",
                "/reboot",
                "/power",
                "/console",
            ]));
        }
        let base = match (self.deploy, self.reboot, self.power, self.console) {
            (true, false, false, false) => "/deployment",
            (false, true, false, false) => "/reboot",
            (false, false, true, false) => "/power",
            (false, false, false, true) => "/console",
            _ => return Err(usage("You must choose an operation")),
        };
        Ok(NodesQuery::Status(
            self.wid
                .as_ref()
                .map(|w| format!("{base}/{}", enc(w)))
                .unwrap_or_else(|| base.to_string()),
        ))
    }
}

/// Runs `kanodes3`.
pub fn kanodes(args: &[String], env: &ClientEnv) -> i32 {
    tool(
        "kanodes3",
        args,
        env,
        |c: &NodesCli| &c.global,
        async |api, cli: &NodesCli| {
            let yaml = "application/x-yaml";
            let mut dry = Vec::new();
            dry_run_query(&cli.global, &mut dry);
            let body = match cli.query()? {
                NodesQuery::States(q) => api.text_as(Method::GET, "/nodes", &q, None, yaml).await?,
                NodesQuery::Status(path) => {
                    api.text_as(Method::GET, &path, &dry, None, yaml).await?
                }
                NodesQuery::All(paths) => {
                    let mut all = Map::new();
                    for path in paths {
                        let v = api.json(Method::GET, path, &dry, None).await?;
                        all.insert(path.trim_start_matches('/').to_string(), v);
                    }
                    kadeploy::wire::to_yaml(&Value::Object(all))
                }
            };
            if !cli.global.dry_run {
                print!("{body}");
            }
            Ok(())
        },
    )
}
