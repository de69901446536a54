//! Page cursors: the shared opaque, tamper-checked kind (see [`crate::cursor`]).

pub(crate) use crate::cursor::{decode, encode};
