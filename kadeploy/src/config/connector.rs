//! `DEFAULT_CONNECTOR` in the commands of a configuration (`remoteops`, `command.conf`,
//! `external/taktuk/connector`): replaced at load by `external/default_connector`, as Kadeploy does before
//! it runs them.

use std::path::Path;

/// The word commands use for the connector.
pub const WORD: &str = "DEFAULT_CONNECTOR";

/// What `DEFAULT_CONNECTOR` stands for: `connector` (`external/default_connector`), given `private_key`
/// with `-i` when it is an `ssh` command line that names no identity. Kadeploy loads `ssh_private_key` into
/// the ssh-agent its connector uses (`ssh -A`); kadeploy3d runs no agent, so the key is named instead.
pub fn expand(connector: &str, private_key: Option<&Path>) -> String {
    let mut words = connector.split_whitespace();
    let is_ssh = words
        .next()
        .is_some_and(|w| w == "ssh" || w.ends_with("/ssh"));
    let has_identity = connector.split_whitespace().any(|w| w.starts_with("-i"));
    match private_key {
        Some(key) if is_ssh && !has_identity => {
            let (program, rest) = connector
                .trim_start()
                .split_once(char::is_whitespace)
                .unwrap_or((connector.trim(), ""));
            let key = shell_word(&key.display().to_string());
            format!("{program} -i {key} {rest}").trim_end().to_string()
        }
        _ => connector.to_string(),
    }
}

/// `command` with every `DEFAULT_CONNECTOR` replaced by `connector`.
pub fn substitute(command: &str, connector: &str) -> String {
    command.replace(WORD, connector)
}

/// `word` as one shell word: as it is when plain, else single-quoted.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::wire::DEFAULT_CONNECTOR;

    #[test]
    fn ssh_connectors_name_the_deploy_key() {
        let key = Path::new("/etc/kadeploy3/keys/id_deploy");
        assert_eq!(
            expand(DEFAULT_CONNECTOR, Some(key)),
            format!(
                "ssh -i /etc/kadeploy3/keys/id_deploy {}",
                DEFAULT_CONNECTOR.trim_start_matches("ssh ")
            )
        );
        assert_eq!(expand("ssh", Some(Path::new("/k ey"))), "ssh -i '/k ey'");
        assert_eq!(expand("ssh -i /other -q", Some(key)), "ssh -i /other -q");
        assert_eq!(
            expand("/usr/bin/rsh -l root", Some(key)),
            "/usr/bin/rsh -l root"
        );
        assert_eq!(expand("ssh -q", None), "ssh -q");
        assert_eq!(
            substitute("DEFAULT_CONNECTOR HOSTNAME_FQDN /sbin/reboot", "ssh -q"),
            "ssh -q HOSTNAME_FQDN /sbin/reboot"
        );
    }
}
