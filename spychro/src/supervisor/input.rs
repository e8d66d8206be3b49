//! Input for [`Link::inpt`](crate::Link::inpt): prompts are asked one at a time, and a thread
//! reads the answers (from the caller's stdin, or a reader given to the supervisor) so that
//! the routing loop never blocks on the user; it wakes the loop through its wake socket.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, mpsc};

/// A prompt waiting to be asked: who asked, and the prompt.
type Prompt = (u64, String);

/// The input state of a supervisor.
#[derive(Default)]
pub(crate) struct Input {
    source: Option<Box<dyn BufRead + Send>>,
    queue: VecDeque<Prompt>,
    /// Whose prompt is being answered.
    pub(crate) asking: Option<u64>,
    reader: Option<Reader>,
}

struct Reader {
    ask: mpsc::Sender<()>,
    answers: mpsc::Receiver<Result<String, String>>,
}

impl Input {
    pub(crate) fn set_source(&mut self, source: Box<dyn BufRead + Send>) {
        self.source = Some(source);
    }

    pub(crate) fn push(&mut self, id: u64, prompt: String) {
        self.queue.push_back((id, prompt));
    }

    /// The next prompt to ask, if none is being answered (the caller checks it is still
    /// wanted, then calls [`ask`](Input::ask)).
    pub(crate) fn next(&mut self) -> Option<Prompt> {
        if self.asking.is_some() {
            return None;
        }
        self.queue.pop_front()
    }

    /// Prints `prompt` and has the reader thread read one line.
    pub(crate) fn ask(&mut self, id: u64, prompt: &str, wake: &Arc<UnixStream>) {
        if !prompt.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{prompt}");
            let _ = out.flush();
        }
        let reader = self.reader.get_or_insert_with(|| {
            let (ask, asked) = mpsc::channel::<()>();
            let (answer, answers) = mpsc::channel();
            let mut source = self.source.take();
            let wake = Arc::clone(wake);
            let _ = std::thread::Builder::new()
                .name("spychro-input".into())
                .spawn(move || {
                    while asked.recv().is_ok() {
                        let mut line = String::new();
                        let read = match source.as_mut() {
                            Some(r) => r.read_line(&mut line),
                            None => std::io::stdin().read_line(&mut line),
                        };
                        let result = match read {
                            Ok(0) => Err("the supervisor's standard input ended".to_owned()),
                            Ok(_) => {
                                let end = line.trim_end_matches(['\n', '\r']).len();
                                line.truncate(end);
                                Ok(line)
                            }
                            Err(e) => Err(format!("reading the supervisor's input failed: {e}")),
                        };
                        if answer.send(result).is_err() {
                            break;
                        }
                        let _ = (&*wake).write(&[1]);
                    }
                });
            Reader { ask, answers }
        });
        let _ = reader.ask.send(());
        self.asking = Some(id);
    }

    /// The answer to the prompt being asked, if it came.
    pub(crate) fn answer(&mut self) -> Option<(u64, Result<String, String>)> {
        let id = self.asking?;
        let answer = self.reader.as_ref()?.answers.try_recv().ok()?;
        self.asking = None;
        Some((id, answer))
    }
}
