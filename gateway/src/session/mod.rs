//! The session stage: MCP sessions (protocol versions up to 2025-11-25) live in the shared
//! database, so any replica serves any request. Each replica trusts its last look at a session
//! for `server.session_recheck` before asking the database again ([`store`]), and keeps rmcp's
//! live copy in memory, restored from the database when a session it has not seen arrives
//! ([`manager`]). A cancellation reaches its call, and the client's answer the question a call
//! asked it, on whichever replica runs the call ([`relay`]).
//! A user's sessions are capped by slots reserved in the database ([`slots`]).

mod manager;
mod relay;
mod slots;
mod store;

pub use manager::{Questions, SessionError, SharedSessionManager};
pub use relay::{InFlight, MAX_ANSWER_BYTES, Posted, Registration, Served, SignalRelay};
pub use slots::{Reservation, Reserved, SessionSlots};
pub use store::{LiveSession, LookupError, SessionTiming, SqlSessionStore};
