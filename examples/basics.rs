//! The "multiprocessing Basics" walk-through, in spychro: a simple process, arguments, names,
//! daemons, join with a timeout, terminate, exit codes, a process as a type, and lifecycle
//! logging.
//!
//! ```text
//! cargo run --release --example basics
//! RUST_LOG=info cargo run --release --example basics   # with the lifecycle log
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spychro::{Process, ProcessList, Task, current_process};

/// The simplest target: says hello.
#[spychro::job]
fn worker(_: ()) {
    println!("Worker");
}

/// A target with an argument.
#[spychro::job]
fn worker_with(num: u32) {
    println!("Worker: {num}");
}

/// Prints its own name, given or default.
#[spychro::job]
fn named(pause_ms: u64) {
    let me = current_process();
    println!("{} Starting", me.name);
    std::thread::sleep(Duration::from_millis(pause_ms));
    println!("{} Exiting", me.name);
}

#[spychro::job]
fn slow(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[spychro::job]
fn exit_with(code: i32) {
    std::process::exit(code)
}

#[spychro::job]
fn raises(_: ()) {
    panic!("an error in the child")
}

/// A process written as a type with its own state (the seed's "subclassing Process").
#[derive(Serialize, Deserialize)]
struct Greeter {
    greeting: String,
    times: u32,
}

#[spychro::task]
impl Task for Greeter {
    type Output = usize;
    fn run(self) -> usize {
        for _ in 0..self.times {
            println!("{} from {}", self.greeting, current_process().name);
        }
        self.times as usize
    }
}

fn main() -> Result<(), spychro::Error> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    println!("-- simple: five processes");
    let mut list = ProcessList::new();
    for _ in 0..5 {
        list.add(Process::new(worker, ()));
    }
    list.start()?;
    list.join()?;

    println!("-- arguments");
    let mut list = ProcessList::new();
    for i in 0..5 {
        list.add(Process::new(worker_with, i));
    }
    list.start()?;
    list.join()?;

    println!("-- names");
    let mut service = Process::new(named, 100).name("my_service");
    let mut worker_1 = Process::new(named, 50).name("worker 1");
    let mut default = Process::new(named, 50); // Process-N
    for p in [&mut service, &mut worker_1, &mut default] {
        p.start()?;
    }
    for p in [&mut service, &mut worker_1, &mut default] {
        p.join()?;
    }

    println!("-- daemon and join timeout");
    let mut daemon = Process::new(slow, 2_000).name("daemon");
    let mut non_daemon = Process::new(slow, 100).name("non-daemon").daemon(false);
    daemon.start()?;
    non_daemon.start()?;
    match daemon.join_timeout(Duration::from_millis(100))? {
        Some(_) => println!("daemon finished early?"),
        None => println!("daemon still alive after 100 ms: {}", daemon.is_alive()),
    }
    println!("non-daemon returned {} ms", non_daemon.join()?);
    drop(daemon); // a daemon is killed with its handle
    println!("dropped the daemon");

    println!("-- terminate");
    let mut p = Process::new(slow, 60_000);
    println!("BEFORE: alive {}", p.is_alive());
    p.start()?;
    println!("DURING: alive {}", p.is_alive());
    p.terminate();
    let _ = p.join();
    println!(
        "TERMINATED: alive {}, exit code {:?}",
        p.is_alive(),
        p.exit_code()
    );

    println!("-- exit codes (0 ok, > 0 exit code, < 0 killed by signal)");
    let mut list = ProcessList::new();
    list.add(Process::new(exit_with, 0).name("exit_ok"));
    list.add(Process::new(exit_with, 1).name("exit_error"));
    list.add(Process::new(slow, 1).name("return_value"));
    list.add(Process::new(raises, ()).name("raises"));
    list.add(Process::new(slow, 60_000).name("terminated"));
    list.start()?;
    std::thread::sleep(Duration::from_millis(200));
    list.terminate();
    let names = [
        "exit_ok",
        "exit_error",
        "return_value",
        "raises",
        "terminated",
    ];
    for (name, code) in names.iter().zip(list.join()?) {
        println!("{name:>12}.exitcode = {code:?}");
    }

    println!("-- a process as a type");
    let mut p = Process::task(Greeter {
        greeting: "hello".into(),
        times: 2,
    });
    p.start()?;
    println!("greeted {} times", p.join()?);
    Ok(())
}
