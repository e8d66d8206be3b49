//! The operating system, wrapped: starting worker processes (`spawn`), from a fork server
//! (`fork_server` asks one, `zygote` is one), passing descriptors
//! (`fdpass`), the status page shared with a worker (`status`), process descriptors
//! (`pidfd`), ending a process tree (`tree`), SIGINT/SIGTERM (`signals`), sleeping on a
//! shared word (`futex`), and how a worker's allocator keeps freed memory (`heap`).
//!
//! Most of the crate's `unsafe` lives here, each block with the invariant it relies on.

pub(crate) mod fdpass;
pub(crate) mod fork_server;
pub(crate) mod futex;
pub(crate) mod heap;
pub(crate) mod pidfd;
pub(crate) mod signals;
pub(crate) mod spawn;
pub(crate) mod status;
pub(crate) mod tree;
pub(crate) mod zygote;
