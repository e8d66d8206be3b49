//! Checks a directory of `.gz` files for corruption in a pool of worker processes: each file
//! is one item, fully decompressed by a worker, which sends back a small `Verdict`.
//!
//! ```text
//! cargo run --release --example gzcheck [DIR] [--processes N]
//! ```
//!
//! With no `DIR` it first writes a sample directory, `spychro-gzcheck-sample` under the
//! system's temporary directory (recreated on each run), of 200 gzip files from 1 KiB to a few
//! MiB of log-like text, five of them damaged on purpose: truncated, a flipped byte in the
//! compressed body, a wrong length in the trailer, not gzip at all, and garbage appended after
//! the last member. It then checks the directory and verifies that exactly those five were
//! found bad.
//!
//! What it shows:
//! - a job over `PathBuf` items that returns a serializable struct: a corrupt file is a normal
//!   result (a verdict), while a file that cannot be opened is the job's `Err`, which stops the
//!   run with an error naming the file;
//! - `stream_multi_processed`, to report bad files as their results arrive, in input order;
//! - a second job, with an extra argument, that writes the sample in parallel.
//!
//! Exit status: 0 when every file is good (for the sample: when exactly the damaged files were
//! found bad), 1 when bad files were found (for the sample: when the bad files were not exactly
//! the damaged ones), 2 on errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use flate2::Compression;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use spychro::Job;

/// What a worker found in one file.
#[derive(Debug, Serialize, Deserialize)]
struct Verdict {
    path: PathBuf,
    ok: bool,
    /// Uncompressed bytes read: all of them for a good file, those before the error for a bad one.
    bytes: u64,
    /// Why the file is bad.
    error: Option<String>,
}

/// Decompresses the whole file (every gzip member) and reports whether that worked. Stricter
/// than `gzip -t`, which ignores trailing zero bytes.
#[spychro::job]
fn check_file(path: PathBuf) -> io::Result<Verdict> {
    // Not being able to open the file is not a verdict on its contents: fail the item.
    let mut file = BufReader::with_capacity(256 * 1024, File::open(&path)?);
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
    let mut bytes = 0;
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
    };
    Ok(Verdict {
        path,
        ok: error.is_none(),
        bytes,
        error,
    })
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

const USAGE: &str = "usage: gzcheck [DIR] [--processes N]\n\
    checks every .gz file under DIR; with no DIR, generates and checks a sample directory";

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Some(opts) = Options::parse()? else {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    };
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

    let started = Instant::now();
    let (mut checked, mut bytes) = (0, 0);
    let mut bad = BTreeSet::new();
    let verdicts = Job::new(check_file, files)
        .processes(processes)
        .stream_multi_processed()?;
    for verdict in verdicts {
        let verdict = verdict?;
        checked += 1;
        bytes += verdict.bytes;
        if let Some(error) = &verdict.error {
            let name = relative(&verdict.path, &dir);
            println!("BAD  {name}: {error}");
            bad.insert(name);
        }
    }
    println!(
        "checked {checked} files in {:.2?} with {processes} process{}: {} bad, {:.1} MiB \
         decompressed",
        started.elapsed(),
        if processes == 1 { "" } else { "es" },
        bad.len(),
        bytes as f64 / MIB,
    );

    let Some(damaged) = damaged else {
        return Ok(if bad.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    };
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
}

impl Options {
    /// The options, or `None` when help was asked for.
    fn parse() -> Result<Option<Options>, String> {
        let mut opts = Options {
            dir: None,
            processes: None,
        };
        let mut args = std::env::args_os().skip(1);
        while let Some(arg) = args.next() {
            let count = match arg.to_str() {
                Some("-h" | "--help") => return Ok(None),
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
