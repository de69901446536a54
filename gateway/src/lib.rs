//! Manifold gateway.
