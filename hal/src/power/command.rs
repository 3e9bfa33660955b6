//! Power through Kadeploy-style command templates (`remoteops`), run per node with a timeout.
