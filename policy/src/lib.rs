//! Manifold policy seam.
