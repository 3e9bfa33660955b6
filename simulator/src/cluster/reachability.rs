//! Reachability of simulated nodes: Kadeploy's `wait_reboot` port checks answered from each node's
//! state at the current virtual time (sshd's port 22 in every running system, 25300 in the deploy
//! environment only, every other port closed).

use super::SimCluster;
use super::state::Env;
use async_trait::async_trait;
use hal::{ErrorKind, NodeError, NodeId, Outcome, Outcomes, PortCheck, Reachability};
use tracing::debug;

/// The outcome of `check` on a node running `env` (`None` = down).
fn check_ports(name: &str, env: Option<Env>, check: &PortCheck) -> Outcome {
    let Some(env) = env else {
        // Most probes while nodes boot end here: one exact-size string, no formatting machinery.
        const DOWN: &str = ": no route to host (node down)";
        let mut message = String::with_capacity(name.len() + DOWN.len());
        message.push_str(name);
        message.push_str(DOWN);
        return Err(NodeError::new(ErrorKind::Unreachable, message));
    };
    if let Some(port) = check.up.iter().find(|&&p| !env.port_open(p)) {
        return Err(NodeError::new(
            ErrorKind::Unreachable,
            format!("{name}: port {port} refused the connection"),
        ));
    }
    if let Some(port) = check.down.iter().find(|&&p| env.port_open(p)) {
        return Err(NodeError::new(
            ErrorKind::Unreachable,
            format!("{name}: port {port} accepted the connection"),
        ));
    }
    Ok(())
}

#[async_trait]
impl Reachability for SimCluster {
    async fn probe(&self, nodes: &[NodeId], check: &PortCheck) -> Outcomes {
        let t0 = self.now();
        self.sleep_until(t0 + self.params.ops.probe).await;
        let t = self.now();
        let mut silent = false;
        let outcomes = {
            let st = self.lock();
            Outcomes::from_fn(nodes, |node| {
                let i = self.index(node)?;
                let env = st[i].env_at(t);
                silent |= env.is_none();
                check_ports(&self.nodes[i].name, env, check)
            })
        };
        // The probes run in parallel: a node that does not answer holds the round until the timeout.
        if silent {
            self.sleep_until(t0 + self.params.ops.probe_timeout.max(self.params.ops.probe))
                .await;
        }
        debug!(
            nodes = nodes.len(),
            failed = outcomes.failures().len(),
            "simulated probe"
        );
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_tell_the_environments_apart() {
        let deploy = PortCheck {
            up: vec![22, 25300],
            down: vec![],
        };
        let user = PortCheck {
            up: vec![22],
            down: vec![25300],
        };
        assert!(check_ports("n", Some(Env::Deploy), &deploy).is_ok());
        assert!(check_ports("n", Some(Env::Deploy), &user).is_err());
        assert!(check_ports("n", Some(Env::Deployed), &user).is_ok());
        assert!(check_ports("n", Some(Env::Deployed), &deploy).is_err());
        let down = check_ports("n", None, &PortCheck::default()).unwrap_err();
        assert_eq!(down.kind, ErrorKind::Unreachable);
    }
}
