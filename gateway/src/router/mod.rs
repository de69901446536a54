//! Routing: the table from exposed tool names (`<prefix>_<tool>`) to adapter instances, built once
//! per config and looked up on every call. Names are never split to find their adapter.

mod catalog;
mod defaults;
mod names;
mod virtualize;

pub use catalog::{Catalog, CatalogError, CatalogInstance, Route};
pub use names::{MAX_TOOL_NAME, exposed_name};
pub use virtualize::{HintOverrides, ToolOverride, View, VirtualizeError};

#[cfg(test)]
pub(crate) use catalog::tests::{route_of, tool as test_tool};
