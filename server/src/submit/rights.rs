//! Kadeploy's rights check of a submission (error 6): some right on every node, and for a deployment
//! the right on the partition it writes, on each cluster (its own block device and deploy partition).

use super::{Submission, err};
use crate::App;
use crate::nodeset;
use kadeploy::error::{ApiError, RequestError};

/// Checks `user`'s rights for `submission` (nothing when `rights/kind` is `dummy`).
pub fn check(app: &App, user: &str, submission: &Submission) -> Result<(), RequestError> {
    if app.settings.rights_dummy {
        return Ok(());
    }
    let denied = || err(ApiError::InvalidRights, "");
    let names = &submission.common().nodes;
    if !app.store.granted(user, names, "")? {
        return Err(denied());
    }
    if let Submission::Deployment(d) = submission {
        for (index, nodes) in nodeset::by_cluster(&app.nodes, names) {
            let Some(cluster) = app.clusters.get(index) else {
                continue;
            };
            let names: Vec<String> = nodes.into_iter().map(|(_, name)| name).collect();
            let partition = d.partition_on(&cluster.config);
            if !app.store.granted(user, &names, &partition)? {
                return Err(err(
                    ApiError::InvalidRights,
                    format!("deployment on partition {partition}"),
                ));
            }
        }
    }
    Ok(())
}
