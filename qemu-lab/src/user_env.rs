//! A user's own environment for `kalab up|e2e --env FILE`: its kaenv3 description (YAML), read for its
//! name and the files it names, so that the lab's server may open its `server://` references.

use crate::images::Environment;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Largest description read (kaenv3 descriptions are a few hundred bytes).
const MAX_DESCRIPTION: u64 = 1 << 20;

/// Why a description cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UserEnvError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The description.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not a description kalab can deploy.
    #[error("{path}: {why}")]
    Invalid {
        /// The description.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

#[derive(Deserialize)]
struct Description {
    name: Option<String>,
    image: Option<FileRef>,
    #[serde(default)]
    preinstall: Option<ArchiveRef>,
    #[serde(default)]
    postinstalls: Vec<ArchiveRef>,
}

#[derive(Deserialize)]
struct FileRef {
    file: Option<String>,
}

#[derive(Deserialize)]
struct ArchiveRef {
    archive: Option<String>,
}

/// A user's environment: what kalab registers and deploys, and the server directories its
/// `server://` files are in.
#[derive(Clone, Debug)]
pub struct UserEnv {
    /// The environment, as the lab's own ones are listed.
    pub environment: Environment,
    /// The directories of its `server://` files (for `security/server_file_directories`).
    pub server_dirs: Vec<PathBuf>,
}

/// Reads the description at `path` (at most 1 MiB): it must name the environment and its image.
pub fn read(path: &Path) -> Result<UserEnv, UserEnvError> {
    let invalid = |why: String| UserEnvError::Invalid {
        path: path.to_path_buf(),
        why,
    };
    let io = |source| UserEnvError::Io {
        path: path.to_path_buf(),
        source,
    };
    let path = std::fs::canonicalize(path).map_err(io)?;
    let meta = std::fs::metadata(&path).map_err(io)?;
    if !meta.is_file() || meta.len() > MAX_DESCRIPTION {
        return Err(invalid(format!(
            "not a file of at most {MAX_DESCRIPTION} bytes"
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(io)?;
    let d: Description =
        serde_saphyr::from_str(&text).map_err(|e| invalid(format!("not a description: {e}")))?;
    let name = d
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| invalid("no `name`".into()))?;
    let image = d
        .image
        .and_then(|i| i.file)
        .ok_or_else(|| invalid("no `image/file`".into()))?;
    let mut server_dirs = Vec::new();
    let files = std::iter::once(Some(image.clone()))
        .chain(d.preinstall.map(|p| p.archive))
        .chain(d.postinstalls.into_iter().map(|p| p.archive))
        .flatten();
    for file in files {
        if let Some(local) = file.strip_prefix("server://")
            && let Some(dir) = Path::new(local).parent()
            && !server_dirs.iter().any(|d: &PathBuf| d == dir)
        {
            server_dirs.push(dir.to_path_buf());
        }
    }
    let image_path = PathBuf::from(image.strip_prefix("server://").unwrap_or(&image));
    Ok(UserEnv {
        environment: Environment {
            name,
            description: path.clone(),
            postinstall: image_path.clone(),
            image: image_path,
            marks_nodes: false,
        },
        server_dirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kalab-user-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_description_gives_its_name_image_and_server_directories() {
        let path = write(
            "ci.yaml",
            "---\nname: ci-image\nversion: 3\nos: linux\nimage:\n  file: server:///srv/ci/ci.tgz\n  kind: tar\n  compression: gzip\n\
             postinstalls:\n- archive: server:///srv/post/p.tgz\n  compression: gzip\n  script: p.sh\n\
             - archive: http://example.invalid/q.tgz\n  script: q.sh\nboot:\n  kernel: /vmlinuz\n",
        );
        let env = read(&path).unwrap();
        assert_eq!(env.environment.name, "ci-image");
        assert_eq!(env.environment.image, PathBuf::from("/srv/ci/ci.tgz"));
        assert!(!env.environment.marks_nodes);
        assert_eq!(
            env.server_dirs,
            [PathBuf::from("/srv/ci"), PathBuf::from("/srv/post")]
        );
    }

    #[test]
    fn descriptions_without_name_or_image_or_too_large_are_refused() {
        let no_name = write("no-name.yaml", "image: {file: /a.tgz}\n");
        assert!(read(&no_name).unwrap_err().to_string().contains("name"));
        let no_image = write("no-image.yaml", "name: x\n");
        assert!(read(&no_image).unwrap_err().to_string().contains("image"));
        let big = write("big.yaml", &"#".repeat(MAX_DESCRIPTION as usize + 1));
        assert!(read(&big).unwrap_err().to_string().contains("at most"));
        assert!(read(Path::new("/nonexistent/kalab.yaml")).is_err());
    }
}
