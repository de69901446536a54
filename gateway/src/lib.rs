//! Manifold: one MCP endpoint in front of a company's tools.
//!
//! The request path, one module per stage: [`transport`] → [`auth`] → [`session`] → [`router`] → policy
//! ([`manifold_policy`]) → [`broker`] → adapter ([`manifold_adapters`]). [`handler`] runs the
//! stages for each MCP request; [`app`] assembles them from a [`config`].

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod config;
pub mod demo;
pub mod handler;
pub mod keyring;
pub mod policy;
pub mod redact;
pub mod router;
pub mod runtime;
pub mod session;
pub mod storage;
pub mod telemetry;
pub mod transport;
