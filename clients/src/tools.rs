//! `kaenv3`, `karights3`, `kastat3` and `kanodes3` (spec §2.5–§2.9): options, requests and outputs.

use super::{Api, ClientEnv, ClientError, block_on, export, nodes, parse_args as parse};
use crate::global::GlobalArgs;
use crate::workflow::SecureArgs;
use clap::Parser;
use reqwest::Method;
use serde_json::{Map, Value, json};

pub mod dates;
mod kaenv3;
mod kanodes3;
mod karights3;
mod kastat3;

pub use kaenv3::*;
pub use kanodes3::*;
pub use karights3::*;
pub use kastat3::*;

fn usage(m: &str) -> ClientError {
    ClientError::Usage(m.into())
}

/// Runs a non-workflow client: parses `args`, answers `-v`/`-I`, then runs `body` on the chosen server
/// (on every reachable server, one after the other, with `-M`).
fn tool<C, G, F>(name: &str, args: &[String], env: &ClientEnv, global: G, body: F) -> i32
where
    C: Parser,
    G: Fn(&C) -> &GlobalArgs,
    F: AsyncFn(&Api, &C) -> Result<(), ClientError>,
{
    let cli: C = match parse(name, args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    block_on(async move {
        let g = global(&cli);
        if g.answer_info(env).await? {
            return Ok(());
        }
        for api in g.connect(env).await? {
            body(&api, &cli).await?;
        }
        Ok(())
    })
}

/// Adds `dry_run: true` to a request's parameters (`Client.init_params`).
fn dry_run_body(g: &GlobalArgs, mut body: Value) -> Value {
    if g.dry_run
        && let Some(m) = body.as_object_mut()
    {
        m.insert("dry_run".into(), json!(true));
    }
    body
}

/// Adds `dry_run=true` to a query.
fn dry_run_query(g: &GlobalArgs, q: &mut Vec<(&str, String)>) {
    if g.dry_run {
        q.push(("dry_run", "true".into()));
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests;
