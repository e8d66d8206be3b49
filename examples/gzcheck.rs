//! Checks a directory of `.gz` files for corruption in a pool of worker processes, and shows
//! what the workers are doing while they do it: each file is one item, fully decompressed by a
//! worker, which logs, sends a message about the file, reports its progress through the file,
//! and returns a small `Verdict`.
//!
//! ```text
//! cargo run --release --example gzcheck [DIR] [--processes N] [-v]
//! ```
//!
//! Given a `DIR`, it lists the bad files found at the end, sorted, on stdout (logs go to
//! stderr). With no `DIR` it first writes a sample directory, `spychro-gzcheck-sample` under the
//! system's temporary directory (recreated on each run), of 200 gzip files from 1 KiB to a few
//! MiB of log-like text, five of them damaged on purpose: truncated, a flipped byte in the
//! compressed body, a wrong length in the trailer, not gzip at all, and garbage appended after
//! the last member. It then checks the directory and verifies that exactly those five were
//! found bad.
//!
//! What it shows:
//! - **logs**: the job logs with the `log` crate (`starting check for file ...`, `file ... is
//!   ok`, `file ... is corrupt: ...`). `main` installs `env_logger`, and each worker's records
//!   come out of it tagged `[worker PID item N]`. By default only warnings and errors are shown
//!   (one line per corrupt file); `-v` shows every file's info lines; `RUST_LOG` overrides both.
//! - **messages**: the job takes `ctx: &Ctx<Checked>` and sends each file's outcome; main's
//!   `on_message` handler, a closure that changes plain local variables, keeps running totals
//!   while the job runs. When no progress bar is drawn it prints them at each quarter of the
//!   files (for 20 files or more); at the end they are checked against the returned verdicts.
//! - **progress**: `.progress(true)` draws a bar (files done, rate, time left) on stderr when
//!   it is a terminal, with the latest `ctx.progress(...)` report within a file; log lines are
//!   written above it.
//! - a job over `PathBuf` items that returns a serializable struct: a corrupt file is a normal
//!   result (a verdict), while a file that cannot be opened is the job's `Err`, which stops the
//!   run with an error naming the file;
//! - a second job, with an extra argument, that writes the sample in parallel.
//!
//! Exit status: 0 when every file is good (for the sample: when exactly the damaged files were
//! found bad), 1 when bad files were found (for the sample: when the bad files were not exactly
//! the damaged ones), 2 on errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, ErrorKind, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use flate2::Compression;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use spychro::{Ctx, Job};

/// What a worker found in one file: the job's output.
#[derive(Debug, Serialize, Deserialize)]
struct Verdict {
    path: PathBuf,
    ok: bool,
    /// Uncompressed bytes read: all of them for a good file, those before the error for a bad one.
    bytes: u64,
    /// Why the file is bad.
    error: Option<String>,
}

/// What a worker tells the caller as soon as a file is checked: the message the job sends.
#[derive(Debug, Serialize, Deserialize)]
struct Checked {
    ok: bool,
    bytes: u64,
}

/// Checks one file, as the Python original's `check_file` does: logs that it starts, logs the
/// verdict (an error for a corrupt file), sends it to the caller, and returns it.
#[spychro::job]
fn check_file(path: PathBuf, ctx: &Ctx<Checked>) -> io::Result<Verdict> {
    log::info!("starting check for file {}", path.display());
    let verdict = inspect(path, |fraction| ctx.progress(fraction))?;
    match &verdict.error {
        None => log::info!("file {} is ok", verdict.path.display()),
        Some(error) => log::error!("file {} is corrupt: {error}", verdict.path.display()),
    }
    ctx.send(Checked {
        ok: verdict.ok,
        bytes: verdict.bytes,
    });
    Ok(verdict)
}

/// Decompresses the whole file (every gzip member) and reports whether that worked, calling
/// `progress` with the fraction of the file read as it goes. Stricter than `gzip -t`, which
/// ignores trailing zero bytes.
fn inspect(path: PathBuf, mut progress: impl FnMut(f64)) -> io::Result<Verdict> {
    // Not being able to open the file is not a verdict on its contents: fail the item.
    let file = File::open(&path)?;
    let size = file.metadata()?.len();
    let counting = Counting {
        inner: file,
        read: 0,
    };
    let mut file = BufReader::with_capacity(256 * 1024, counting);
    let bad = |error: &str| Verdict {
        path: path.clone(),
        ok: false,
        bytes: 0,
        error: Some(error.to_string()),
    };
    match file.fill_buf()? {
        [] => return Ok(bad("empty file")),
        [0x1f, 0x8b, ..] | [0x1f] => {}
        _ => return Ok(bad("not in gzip format")),
    }
    let mut gz = MultiGzDecoder::new(file);
    let mut buf = vec![0; 256 * 1024];
    let (mut bytes, mut reported) = (0, 0);
    let error = loop {
        match gz.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => bytes += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                break Some("unexpected end of file".to_string());
            }
            // A header is only parsed at the start of a member: after output, this is what
            // follows a complete member.
            Err(e) if bytes > 0 && e.to_string() == "invalid gzip header" => {
                break Some("trailing data after the last gzip member".to_string());
            }
            Err(e) => break Some(e.to_string()),
        }
        let read = gz.get_ref().get_ref().read;
        if read != reported && read < size {
            progress(read as f64 / size as f64);
            reported = read;
        }
    };
    Ok(Verdict {
        path,
        ok: error.is_none(),
        bytes,
        error,
    })
}

/// A reader that counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gzcheck: error: {e}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage: gzcheck [DIR] [--processes N] [-v | --verbose]\n\
    checks every .gz file under DIR; with no DIR, generates and checks a sample directory.\n\
    Workers' warnings and errors are logged; -v logs every file (RUST_LOG overrides both)";

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Some(opts) = Options::parse()? else {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    };
    // The workers' records come out of this logger; it also sets how much they send.
    let filter = if opts.verbose { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter))
        .format(|out, record| writeln!(out, "{:<5} {}", record.level(), record.args()))
        .init();
    let processes = opts.processes.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });

    let (dir, damaged) = match opts.dir {
        Some(dir) => (dir, None),
        None => {
            let dir = std::env::temp_dir().join("spychro-gzcheck-sample");
            let damaged = write_sample(&dir, processes)?;
            (dir, Some(damaged))
        }
    };

    let files = gz_files(&dir).map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
    if files.is_empty() {
        return Err(format!("no .gz files under `{}`", dir.display()).into());
    }
    let total = files.len();
    let es = if processes == 1 { "" } else { "es" };
    println!("checking {total} files with {processes} process{es}");

    // Running totals, kept by the message handler as the workers report each file. The
    // progress bar is drawn only when stderr is a terminal; otherwise the handler prints the
    // totals at each quarter of a directory of 20 files or more. (Not both: what a handler
    // prints is not written above the bar, and would tear it.)
    let started = Instant::now();
    let (mut checked, mut bad_so_far, mut bytes_so_far) = (0, 0, 0);
    let print_totals = !io::stderr().is_terminal() && total >= 20;
    let verdicts = Job::new(check_file, files)
        .processes(processes)
        .progress(true)
        .on_message(|_pid, file: Checked| {
            checked += 1;
            bytes_so_far += file.bytes;
            bad_so_far += usize::from(!file.ok);
            if print_totals && checked < total && checked * 4 / total > (checked - 1) * 4 / total {
                println!(
                    "  {checked:>w$}/{total} files checked, {bad_so_far} bad, {:.1} MiB so far",
                    bytes_so_far as f64 / MIB,
                    w = total.to_string().len(),
                );
            }
        })
        .run_multi_processed()?;

    let mut bad = BTreeMap::new();
    let mut bytes = 0;
    for verdict in &verdicts {
        bytes += verdict.bytes;
        if let Some(error) = &verdict.error {
            bad.insert(relative(&verdict.path, &dir), error.as_str());
        }
    }
    // Every message arrives before its item's output: the totals are complete.
    if (checked, bad_so_far, bytes_so_far) != (verdicts.len(), bad.len(), bytes) {
        return Err("the messages do not add up to the verdicts".into());
    }
    println!(
        "checked {checked} files in {:.2?} with {processes} process{es}: {bad_so_far} bad, \
         {:.1} MiB decompressed",
        started.elapsed(),
        bytes_so_far as f64 / MIB,
    );

    let Some(damaged) = damaged else {
        for (name, error) in &bad {
            println!("BAD  {name}: {error}");
        }
        return Ok(if bad.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    };
    let bad: BTreeSet<String> = bad.into_keys().collect();
    let expected: BTreeSet<String> = damaged.keys().cloned().collect();
    if bad == expected {
        let how: Vec<_> = damaged.values().map(|d| d.what()).collect();
        println!(
            "sample OK: exactly the {} files damaged on purpose were found bad ({})",
            damaged.len(),
            how.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    for name in expected.difference(&bad) {
        println!(
            "sample FAILED: {name} ({}) was not found bad",
            damaged[name].what()
        );
    }
    for name in bad.difference(&expected) {
        println!("sample FAILED: intact file {name} was found bad");
    }
    Ok(ExitCode::from(1))
}

const MIB: f64 = 1024.0 * 1024.0;

/// The command line.
struct Options {
    dir: Option<PathBuf>,
    processes: Option<usize>,
    verbose: bool,
}

impl Options {
    /// The options, or `None` when help was asked for.
    fn parse() -> Result<Option<Options>, String> {
        let mut opts = Options {
            dir: None,
            processes: None,
            verbose: false,
        };
        let mut args = std::env::args_os().skip(1);
        while let Some(arg) = args.next() {
            let count = match arg.to_str() {
                Some("-h" | "--help") => return Ok(None),
                Some("-v" | "--verbose") => {
                    opts.verbose = true;
                    continue;
                }
                Some("-p" | "--processes") => Some(args.next().unwrap_or_default()),
                Some(s) if s.starts_with("--processes=") => Some(s["--processes=".len()..].into()),
                Some(s) if s.starts_with('-') => {
                    return Err(format!("unknown option `{s}`\n{USAGE}"));
                }
                _ => None,
            };
            match count {
                Some(n) => match n.to_str().and_then(|n| n.parse().ok()) {
                    Some(n) if n > 0 => opts.processes = Some(n),
                    _ => return Err(format!("--processes takes a number above 0\n{USAGE}")),
                },
                None if opts.dir.is_none() => opts.dir = Some(arg.into()),
                None => return Err(format!("only one directory can be given\n{USAGE}")),
            }
        }
        Ok(Some(opts))
    }
}

/// Every `.gz` file under `dir`, sorted (symbolic links to directories are not followed).
fn gz_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "gz") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn relative(path: &Path, dir: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

// ---- The sample directory -------------------------------------------------------------------

/// How a sample file is damaged.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Damage {
    /// The last 40% are missing.
    Truncated,
    /// One byte in the middle of the compressed data has its bits inverted.
    FlippedByte,
    /// The uncompressed length in the trailer is off by one.
    WrongLength,
    /// The text was never compressed.
    NotGzip,
    /// Bytes that are not a gzip member follow the last member.
    TrailingGarbage,
}

impl Damage {
    fn what(self) -> &'static str {
        match self {
            Damage::Truncated => "truncated",
            Damage::FlippedByte => "flipped byte",
            Damage::WrongLength => "wrong length",
            Damage::NotGzip => "not gzip",
            Damage::TrailingGarbage => "trailing garbage",
        }
    }
}

/// One file of the sample.
#[derive(Debug, Serialize, Deserialize)]
struct SampleFile {
    /// Path relative to the sample directory.
    name: String,
    /// Uncompressed size.
    size: usize,
    seed: u64,
    /// Gzip members, as written by `cat a.gz b.gz > c.gz` (still a valid gzip file).
    members: usize,
    damage: Option<Damage>,
}

/// Writes one sample file into `dir` and returns its size on disk.
#[spychro::job]
fn write_sample_file(file: SampleFile, dir: PathBuf) -> io::Result<u64> {
    let text = log_text(file.size, file.seed);
    let mut data = Vec::new();
    let part = text.len().div_ceil(file.members).max(1);
    for chunk in text.chunks(part).take(file.members) {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(chunk)?;
        data.extend(gz.finish()?);
    }
    if text.is_empty() {
        data = GzEncoder::new(Vec::new(), Compression::fast()).finish()?;
    }
    match file.damage {
        None => {}
        Some(Damage::Truncated) => data.truncate(data.len() * 3 / 5),
        Some(Damage::FlippedByte) => {
            // The 10-byte header, the deflate data, the 8-byte trailer.
            let middle = 10 + (data.len() - 18) / 2;
            data[middle] = !data[middle];
        }
        Some(Damage::WrongLength) => {
            let at = data.len() - 4;
            let len = u32::from_le_bytes(data[at..].try_into().unwrap());
            data[at..].copy_from_slice(&len.wrapping_add(1).to_le_bytes());
        }
        Some(Damage::NotGzip) => data = text,
        Some(Damage::TrailingGarbage) => {
            data.extend_from_slice(b"\r\n--- upload interrupted, resumed at byte 0 ---\r\n");
        }
    }
    fs::write(dir.join(&file.name), &data)?;
    Ok(data.len() as u64)
}

/// Recreates the sample directory and returns the names of the files damaged on purpose.
fn write_sample(
    dir: &Path,
    processes: usize,
) -> Result<BTreeMap<String, Damage>, Box<dyn std::error::Error>> {
    const FILES: u64 = 200;
    const DAMAGED: [(u64, Damage); 5] = [
        (17, Damage::Truncated),
        (58, Damage::FlippedByte),
        (99, Damage::WrongLength),
        (140, Damage::NotGzip),
        (181, Damage::TrailingGarbage),
    ];
    let started = Instant::now();
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            return Err(format!("cannot remove the old sample `{}`: {e}", dir.display()).into());
        }
        _ => {}
    }
    let hosts = ["web-1", "web-2", "db-1"];
    for host in hosts {
        let sub = dir.join(host);
        fs::create_dir_all(&sub).map_err(|e| format!("cannot create `{}`: {e}", sub.display()))?;
    }

    let mut rng = Rng(0x5eed);
    let files: Vec<SampleFile> = (0..FILES)
        .map(|i| {
            let damage = DAMAGED.iter().find(|d| d.0 == i).map(|d| d.1);
            // Log-uniform sizes from 1 KiB to 4 MiB; damaged files at least 64 KiB; one empty.
            let bits = 10 + rng.below(12);
            let mut size = (1 << bits) + rng.below(1 << bits) as usize;
            if damage.is_some() {
                size = size.max(64 << 10);
            }
            if i == 7 {
                size = 0;
            }
            SampleFile {
                name: format!("{}/app-{i:03}.log.gz", hosts[i as usize % hosts.len()]),
                size,
                seed: rng.next(),
                members: if i % 23 == 5 { 3 } else { 1 },
                damage,
            }
        })
        .collect();
    let damaged = files
        .iter()
        .filter_map(|f| Some((f.name.clone(), f.damage?)))
        .collect();

    let sizes = Job::new(write_sample_file, files)
        .args(dir.to_path_buf())
        .processes(processes)
        .run_multi_processed()?;
    println!(
        "wrote {} sample files ({:.1} MiB) to {} in {:.2?}, {} of them damaged on purpose",
        sizes.len(),
        sizes.iter().sum::<u64>() as f64 / MIB,
        dir.display(),
        started.elapsed(),
        DAMAGED.len(),
    );
    Ok(damaged)
}

/// `size` bytes of log-like text, the same for the same seed.
fn log_text(size: usize, seed: u64) -> Vec<u8> {
    const LEVELS: [&str; 4] = ["INFO", "INFO", "WARN", "DEBUG"];
    const PATHS: [&str; 6] = [
        "/api/v1/items",
        "/api/v1/users",
        "/api/v1/orders",
        "/static/app.js",
        "/healthz",
        "/login",
    ];
    const CODES: [u16; 5] = [200, 200, 200, 304, 404];
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(size + 128);
    let mut t = rng.below(86_400_000);
    while out.len() < size {
        t += rng.below(2_000);
        let (h, m, s, ms) = (t / 3_600_000 % 24, t / 60_000 % 60, t / 1000 % 60, t % 1000);
        writeln!(
            out,
            "2025-06-01T{h:02}:{m:02}:{s:02}.{ms:03}Z {} GET {}/{} {} {}ms",
            LEVELS[rng.below(4) as usize],
            PATHS[rng.below(6) as usize],
            rng.below(10_000),
            CODES[rng.below(5) as usize],
            rng.below(300),
        )
        .expect("writing to a Vec cannot fail");
    }
    out.truncate(size);
    out
}

/// SplitMix64: a tiny deterministic generator, enough for sample data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
