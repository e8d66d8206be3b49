//! The worker process: how it is entered before `main` (`entry`), its link to the caller and
//! watchdog (`link`), results held back for a moment (`held`), the loop that serves frames (`serve`), the jobs it holds (`jobs`), one
//! batch of items (`batch`) or of a plain job's (`plain`), what a job logs and sends (`logger`), the table of registered
//! jobs (`registry`), and what this process is (`current`).

pub(crate) mod batch;
pub(crate) mod current;
pub(crate) mod entry;
pub(crate) mod held;
pub(crate) mod jobs;
pub(crate) mod link;
pub(crate) mod logger;
pub(crate) mod plain;
pub(crate) mod registry;
pub(crate) mod serve;
