//! Placeholder until the sandbox throttle lands.
