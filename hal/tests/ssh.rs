//! SSH backend tests against a real SSH server in a network namespace.
