//! Placeholder until the sandbox OAuth emulation lands.
