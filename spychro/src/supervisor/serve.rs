//! The child's side: serves one [`Actor`](super::Actor) — its run phase, then its mailbox
//! until the supervisor closes it — and says how it ended.

use super::actor::{ActorJob, Ending, Start};
use super::link::{Link, LinkError};

/// Runs `start.actor` in this process, connected to its supervisor.
pub(crate) fn serve<A: ActorJob>(start: Start<A>) -> Result<Ending, String> {
    let Start {
        mut actor,
        link,
        id,
        name,
    } = start;
    let mut link = Link::<A::Message>::connect(link, id, name)?;
    if !A::RESIDENT {
        let ran = actor.run(&mut link);
        if let Some(failed) = link.failed.take() {
            return Err(failed);
        }
        ran.map_err(|e| e.to_string())?;
        match link.finish() {
            Ok(()) => {}
            // The supervisor ended first (it was ended itself): nothing is left to say.
            Err(LinkError::Gone) => return Ok(ending(&link)),
            Err(e) => return Err(e.to_string()),
        }
    }
    match link.serve_to_end(&mut actor) {
        Ok(()) => {}
        Err(e) => {
            if let Some(failed) = link.failed.take() {
                return Err(failed);
            }
            match e.downcast_ref::<LinkError>() {
                Some(LinkError::Gone) => {}
                _ => return Err(e.to_string()),
            }
        }
    }
    let _ = link.flush();
    Ok(ending(&link))
}

fn ending<M: super::message::Message>(link: &Link<M>) -> Ending {
    if link.stopped {
        Ending::Stopped
    } else {
        Ending::Finished
    }
}
