//! `kastat3` (spec §2.7): options, the statistics query, and its fields.

use super::*;

/// `kastat3` options.
#[derive(Parser, Debug)]
#[command(
    name = "kastat3",
    about = "Deployment statistics",
    disable_version_flag = true
)]
pub struct StatCli {
    #[command(flatten)]
    global: GlobalArgs,
    /// Every row (default).
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Failure rates, at least RATE.
    #[arg(short = 'b', long = "failure-rate", num_args = 0..=1, default_missing_value = "")]
    failure_rate: Option<String>,
    /// Node file.
    #[arg(short = 'f', long = "file")]
    files: Vec<String>,
    /// Fields, comma separated.
    #[arg(short = 'F', long = "fields", value_delimiter = ',')]
    fields: Vec<String>,
    /// Node, repeatable.
    #[arg(short = 'm', long = "machine")]
    machines: Vec<String>,
    /// `deploy`, `reboot` or `power`.
    #[arg(short = 'o', long = "operation", value_parser = ["deploy", "reboot", "power"])]
    operation: Option<String>,
    /// Minimum retries.
    #[arg(short = 'r', long = "min-retries")]
    min_retries: Option<u32>,
    /// Steps for --min-retries.
    #[arg(short = 's', long = "retry-steps", value_delimiter = ',')]
    steps: Vec<String>,
    /// Workflow id.
    #[arg(short = 'w', long = "workflow-id")]
    wid: Option<String>,
    /// Statistics from this date (`yyyy-mm-dd hh:mm:ss`, UTC, or an RFC 2616 date).
    #[arg(short = 'x', long = "date-min", value_parser = dates::http_date)]
    date_min: Option<String>,
    /// Statistics up to this date.
    #[arg(short = 'y', long = "date-max", value_parser = dates::http_date)]
    date_max: Option<String>,
    /// Rows at most.
    #[arg(long)]
    limit: Option<u64>,
    /// Sort fields.
    #[arg(long, value_delimiter = ',')]
    sort: Vec<String>,
}

impl StatCli {
    /// The query of `GET /stats[/<op>]` (`KastatClient#run`).
    pub fn query(&self) -> Result<Vec<(&'static str, String)>, ClientError> {
        let invalid: Vec<&str> = (self.fields.iter())
            .filter(|f| !kadeploy::wire::STAT_FIELDS.contains(&f.as_str()))
            .map(String::as_str)
            .collect();
        if !invalid.is_empty() {
            return Err(usage(&format!("Invalid field(s) {}", invalid.join(", "))));
        }
        let mut q: Vec<(&str, String)> = Vec::new();
        dry_run_query(&self.global, &mut q);
        match &self.failure_rate {
            Some(rate) => {
                q.push(("kind", "failure_rates".into()));
                if !rate.is_empty() {
                    q.push(("min_failure_rate", rate.clone()));
                }
            }
            None => q.push(("kind", "all".into())),
        }
        q.extend(
            nodes(&self.machines, &self.files)?
                .into_iter()
                .map(|n| ("nodes", n)),
        );
        q.extend(self.fields.iter().map(|f| ("fields", f.clone())));
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        q.extend(self.sort.iter().map(|f| ("sort", f.clone())));
        for (k, v) in [
            ("date_min", &self.date_min),
            ("date_max", &self.date_max),
            ("wid", &self.wid),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        if let Some(r) = self.min_retries {
            q.push(("min_retries", r.to_string()));
        }
        q.extend(self.steps.iter().map(|s| ("step_retries", s.clone())));
        Ok(q)
    }
}

/// Runs `kastat3`.
pub fn kastat(args: &[String], env: &ClientEnv) -> i32 {
    tool(
        "kastat3",
        args,
        env,
        |c: &StatCli| &c.global,
        async |api, cli: &StatCli| {
            let _ = cli.all;
            let q = cli.query()?;
            let path = match cli.operation.as_deref() {
                None => "/stats".to_string(),
                Some(op) => format!("/stats/{op}"),
            };
            if cli.failure_rate.is_some() {
                let rates = api.json(Method::GET, &path, &q, None).await?;
                if cli.global.dry_run {
                    return Ok(());
                }
                for (h, r) in rates.as_object().into_iter().flatten() {
                    api.say(&format!("{h}: {r}"));
                }
            } else {
                let text = api.text(Method::GET, &path, &q, None).await?;
                if !cli.global.dry_run && !text.is_empty() {
                    match &api.label {
                        None => print!("{text}"),
                        Some(_) => api.say(text.trim_end_matches('\n')),
                    }
                }
            }
            Ok(())
        },
    )
}
