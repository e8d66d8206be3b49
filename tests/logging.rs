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

#[test]
fn worker_records_come_out_of_the_callers_logger() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let names: Vec<String> = ["a", "bad-b", "c"].iter().map(|s| s.to_string()).collect();
    let ok = Job::new(check, names)
        .processes(2)
        .run_multi_processed()
        .unwrap();
    assert_eq!(ok, [true, false, true]);
    let mut got = CAPTURE.0.lock().unwrap().clone();
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
