//! Without an `on_log` handler, a worker's `log` records come out of the caller's own logger,
//! with their level and target kept and the worker and item named. (Alone in this binary: it
//! installs the process's logger.)

use std::sync::Mutex;

use spychro::Job;

struct Capture(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let entry = (r.level(), r.target().to_owned(), r.args().to_string());
            self.0.lock().unwrap().push(entry);
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[spychro::job]
fn check(name: String) -> bool {
    log::info!("checking {name}");
    log::debug!("too verbose to be sent");
    if name.contains("bad") {
        log::error!("{name} is corrupt");
        return false;
    }
    true
}

fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Info);
    });
}

#[spychro::job]
fn quiet(x: u32) -> u32 {
    x
}

#[test]
fn a_process_logs_its_lifecycle_through_the_callers_logger() {
    install();
    let mut p = spychro::Process::new(quiet, 1).name("lifecycle-probe");
    p.start().unwrap();
    let pid = p.pid().unwrap();
    assert_eq!(p.join().unwrap(), 1);
    let got = CAPTURE.0.lock().unwrap().clone();
    let mine: Vec<&String> = got
        .iter()
        .filter(|(_, target, text)| {
            target == "spychro::process" && text.contains("lifecycle-probe")
        })
        .map(|(_, _, text)| text)
        .collect();
    assert_eq!(mine.len(), 2, "{got:?}");
    assert_eq!(
        mine[0],
        &format!("[worker {pid}] lifecycle-probe: child process calling run")
    );
    assert!(
        mine[1].ends_with("lifecycle-probe: process exiting with exitcode 0"),
        "{}",
        mine[1]
    );
}

#[test]
fn worker_records_come_out_of_the_callers_logger() {
    install();
    let names: Vec<String> = ["a", "bad-b", "c"].iter().map(|s| s.to_string()).collect();
    let ok = Job::new(check, names)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(ok, [true, false, true]);
    let mut got: Vec<_> = CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, target, _)| target == "logging")
        .cloned()
        .collect();
    got.sort_by(|a, b| {
        a.2.split_once(']')
            .map(|x| x.1)
            .cmp(&b.2.split_once(']').map(|x| x.1))
    });
    assert_eq!(got.len(), 4, "{got:?}");
    for (level, target, text) in &got {
        assert_eq!(target, "logging");
        assert!(text.starts_with("[worker "), "{text}");
        assert!(!text.contains("too verbose"));
        if text.ends_with("is corrupt") {
            assert_eq!(*level, log::Level::Error);
            assert!(text.contains(" item 1] bad-b is corrupt"), "{text}");
        } else {
            assert_eq!(*level, log::Level::Info);
        }
    }
}
