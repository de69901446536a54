//! The DNS step of an outbound fetch. reqwest asks [`GuardedResolver`] for a host's addresses
//! and connects to exactly what it returns, so the addresses checked are the addresses used:
//! there is no second lookup a rebinding DNS server could answer differently. A host with any
//! refused address is refused as a whole (a public and a private record side by side is a
//! rebinding trick, not redundancy).

use std::{io, net::IpAddr, sync::Arc};

use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address::AddressRules;

/// Turns a host name into addresses; [`SystemLookup`] in production, a fixed table in tests.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemLookup;

/// A host whose addresses include one the rules refuse.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to an address that is not allowed ({addr})")]
pub struct BlockedAddress {
    pub host: String,
    pub addr: IpAddr,
}

/// The resolver reqwest uses: [`Lookup`], then the [`AddressRules`].
pub(super) struct GuardedResolver {
    pub(super) lookup: Arc<dyn Lookup>,
    pub(super) rules: Arc<AddressRules>,
}

// === impl SystemLookup ===

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(found.map(|addr| addr.ip()).collect())
        })
    }
}

// === impl GuardedResolver ===

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = self.lookup.clone();
        let rules = self.rules.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = lookup.lookup(host.clone()).await?;
            if addrs.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses").into());
            }
            if let Some(&addr) = addrs.iter().find(|ip| !rules.allows(**ip)) {
                return Err(Box::new(BlockedAddress { host, addr }) as _);
            }
            let addrs: Addrs =
                Box::new(addrs.into_iter().map(|ip| std::net::SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
