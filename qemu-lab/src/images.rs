//! What the lab builds from Debian packages: the deploy kernel and the environments to deploy.
