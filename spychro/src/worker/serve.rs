//! The worker's loop: say hello, then read frames from the caller — job set-ups, batches
//! (encoded, or a plain job's in the worker's region), shutdown — until the caller is done.

use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use super::batch::{Pending, ResultsSink};
use super::jobs::Jobs;
use super::link;
use super::logger::LOGGER;
use crate::error::WireError;
use crate::sys::heap;
use crate::sys::status::StatusPage;
use crate::wire;

/// Serves the caller on `sock` until it says to stop (or goes away); returns the exit code.
pub(crate) fn serve(sock: UnixStream, status: StatusPage) -> Result<i32, WireError> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // Programs the job starts must not inherit the socket.
    fcntl(sock.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(std::io::Error::from)?;
    crate::sys::signals::ignore_sigpipe();
    heap::keep_freed_memory();
    // Orphaned descendants of the jobs are re-parented here, so that they end with us.
    crate::sys::tree::become_subreaper();
    let link = link::init(sock, status);
    // The job's `log` records go to the caller; the level comes with each job.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Off);
    }

    let mut pending = Pending::default();
    wire::push_message(
        &mut pending.out,
        wire::TAG_HELLO,
        &wire::Hello {
            protocol: wire::PROTOCOL_VERSION,
            pid: std::process::id(),
        },
    )?;
    pending.send(link, 0)?;
    // After the hello, off the start-up path: the caller's end closing stays visible.
    link::start_watchdog(link);

    let mut reader = BufReader::with_capacity(256 * 1024, link.socket());
    let mut body = Vec::new();
    let mut jobs = Jobs::default();
    let mut trim_due = false;
    loop {
        if trim_due && reader.buffer().is_empty() {
            trim_due = !heap::trim_when_idle(link.socket());
        }
        let Some(tag) = wire::read_frame(&mut reader, &mut body)? else {
            break;
        };
        match tag {
            wire::TAG_SETUP => {
                let setup: wire::Setup = wire::decode(&body, "setup")?;
                let job = setup.job;
                let result = jobs.load(setup);
                let done = wire::SetupDone { job, result };
                wire::push_message(&mut pending.out, wire::TAG_SETUP_DONE, &done)?;
                pending.send(link, 0)?;
            }
            wire::TAG_UNLOAD => {
                let job = wire::parse_job(&body, "unload")?;
                if let Some(exit) = jobs.unload(job) {
                    wire::push_unloaded(&mut pending.out, job, &exit)?;
                    pending.send(link, 0)?;
                }
                // What the job's items freed and the allocator kept goes back once the
                // worker has been idle a while (at the top of the loop).
                trim_due = true;
            }
            wire::TAG_BATCH | wire::TAG_PLAIN_BATCH => {
                let (header, items, plain) = if tag == wire::TAG_BATCH {
                    let (header, items) = wire::parse_batch(&body)?;
                    (header, items, None)
                } else {
                    let b = wire::parse_plain_batch(&body)?;
                    let header = wire::BatchHeader {
                        job: b.job,
                        first: b.first,
                        count: b.count,
                    };
                    (header, &[][..], Some(b))
                };
                if jobs.dropped(header.job) || link.status.is_cancelled(header.job) {
                    wire::push_skipped(&mut pending.out, header.job, header.first, header.count);
                    pending.send(link, 0)?;
                    continue;
                }
                let Some(loaded) = jobs.enter(header.job) else {
                    return Err(WireError::Decode {
                        what: "batch",
                        message: format!("job id {} was never set up", header.job),
                    });
                };
                link.status.set_job(header.job);
                let process =
                    crate::worker::current::process_name().filter(|_| loaded.settings.process);
                if let Some(name) = process {
                    log::info!(target: "spychro::process", "{name}: child process calling run");
                }
                let mut sink = ResultsSink::new(
                    link,
                    &mut pending,
                    header.job,
                    header.first,
                    loaded.settings.timed,
                );
                match plain {
                    None => (loaded.entry.run_batch)(
                        &*loaded.args,
                        &mut *loaded.state,
                        header.count,
                        items,
                        &mut sink,
                    )?,
                    Some(b) => {
                        (loaded.entry.run_plain)(&*loaded.args, &mut *loaded.state, &b, &mut sink)?
                    }
                }
                // With more to do already here, this batch's results can wait to go with the
                // next one's (a process ends after its one item: it sends at once).
                sink.end_batch(|| {
                    process.is_none()
                        && (wire::holds_whole_frame(reader.buffer()) || link.has_input())
                })?;
                if let Some(name) = process {
                    // A process runs its one item, then ends: 1 if it failed, as Python does.
                    let code = i32::from(sink.failures > 0);
                    log::info!(
                        target: "spychro::process",
                        "{name}: process exiting with exitcode {code}"
                    );
                    let _ = std::io::stdout().flush();
                    return Ok(code);
                }
            }
            wire::TAG_SHUTDOWN => {
                // The states of the jobs still loaded end now; their exit values go first.
                for job in jobs.stateful() {
                    if let Some(exit) = jobs.unload(job) {
                        wire::push_unloaded(&mut pending.out, job, &exit)?;
                    }
                }
                pending.send(link, 0)?;
                return Ok(0);
            }
            other => return Err(WireError::UnknownTag(other)),
        }
    }
    Ok(0)
}
