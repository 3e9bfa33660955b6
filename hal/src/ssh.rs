//! Node operations, soft power and file transfer over SSH (russh), compatible with Kadeploy deploy kernels.
