//! Routing: the table from exposed tool names (`<prefix>_<tool>`) to adapter instances, built from
//! the config and rebuilt whole when a live instance's tools change ([`live`]); looked up on every
//! call. Names are never split to find their adapter.

mod catalog;
mod defaults;
pub mod live;
mod names;
pub mod offers;
mod virtualize;

pub use catalog::{Catalog, CatalogError, CatalogInstance, Route};
pub use names::{MAX_TOOL_NAME, exposed_name};
pub use virtualize::{HintOverrides, ToolOverride, View, VirtualizeError};

#[cfg(test)]
pub(crate) use catalog::tests::{route_of, tool as test_tool};
