//! The files workload: the SHA-256 of every file of a directory tree, one file per item.
//!
//! The tree is made by the suite itself, deterministically (a fixed-seed splitmix64 picks
//! every directory, size and byte), under `target/bench/files-tree-<files>/data`, and reused
//! by later runs while the marker file beside it (`target/bench/files-tree-<files>/params`)
//! holds the same parameters and every file is there at its size. The full run's tree has
//! 4,000 files, about 205 MiB: 99 in 100 of 1–64 KiB, 1 in 100 of 256 KiB–4 MiB, in
//! directories one to three levels deep (`a3/`, `a3/b1/`, `a3/b1/c0/`). The smoke run's has
//! 200 files, about 8 MiB.
//!
//! An item is a file's path (a `String`); the job reads the whole file and returns the first
//! 8 bytes of its SHA-256 as a big-endian u64. Every peer does exactly that work: spychro
//! (`run_multi_processed`, the suite's pool size), rayon (`par_iter` over the paths, a pool of
//! as many threads) and Python (`hashlib.sha256(f.read())` in `multiprocessing.Pool.map`, fork,
//! default chunksize; `bench/python_pool.py`). The checksum is the suite's `weighted` over the
//! digests in path order, so a wrong, missing or misplaced digest is caught.
//!
//! Each child walks the tree and sorts the paths (as strings, byte order: Python's sort of
//! its ASCII paths gives the same list) before its clock starts; the clock covers the job
//! alone (pool start and shut-down included, as in every workload).
//!
//! The page cache is not dropped (that needs root). Instead the cache is warm for every peer
//! alike: before any timed run, the suite reads and hashes every file once itself, which is
//! also how it computes the checksum it expects. The timed runs therefore measure reading
//! from memory and hashing, not the disk.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use spychro::Job;

/// Files in the full run's tree.
pub const FULL_FILES: u64 = 4_000;
/// Files in the smoke run's tree.
pub const SMOKE_FILES: u64 = 200;

/// The seed of the tree's layout and contents.
const SEED: u64 = 0x5EED_F11E_0000_0001;
/// Changes whenever the layout or contents made from a seed change (it is in the marker).
const LAYOUT_VERSION: u32 = 1;
/// One file in this many (by index) is large.
const LARGE_EVERY: u64 = 100;
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

mod jobs {
    /// The files workload's job: the SHA-256 of the file at `path`, truncated to a u64.
    #[spychro::job]
    pub fn hash_file(path: String) -> Result<u64, String> {
        super::digest_file(&path)
    }
}

/// Reads the whole file and returns the first 8 bytes of its SHA-256, big-endian (Python:
/// `int.from_bytes(hashlib.sha256(data).digest()[:8], "big")`).
pub fn digest_file(path: &str) -> Result<u64, String> {
    let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let digest = Sha256::digest(&data);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Ok(u64::from_be_bytes(first))
}

/// splitmix64: small, fast, and the same everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi` (the slight modulo bias does not matter here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One file of the tree: its path under the data directory, and its size.
struct Entry {
    rel: String,
    len: u64,
}

/// The tree of `files` files: every path and size, from the seed alone.
fn layout(files: u64) -> Vec<Entry> {
    let mut rng = SplitMix(SEED);
    (0..files)
        .map(|i| {
            let depth = rng.range(1, 3) as usize;
            let mut rel = String::new();
            for (letter, fanout) in [('a', 8), ('b', 4), ('c', 4)].into_iter().take(depth) {
                let _ = write!(rel, "{letter}{}/", rng.range(0, fanout - 1));
            }
            let _ = write!(rel, "f{i:05}.bin");
            let len = if i % LARGE_EVERY == LARGE_EVERY / 2 {
                rng.range(256 * KIB, 4 * MIB)
            } else {
                rng.range(KIB, 64 * KIB)
            };
            Entry { rel, len }
        })
        .collect()
}

/// File `i`'s bytes: its own splitmix64 stream, little-endian words.
fn contents(i: u64, len: u64) -> Vec<u8> {
    let mut rng = SplitMix(SEED ^ (i + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut data = Vec::with_capacity(len as usize + 8);
    while (data.len() as u64) < len {
        data.extend_from_slice(&rng.next().to_le_bytes());
    }
    data.truncate(len as usize);
    data
}

/// `target/bench/files-tree-<files>`: the tree's data directory and marker file live in it.
fn tree_root(files: u64) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench/files-tree-{files}"))
}

/// The directory whose files are hashed.
pub fn data_dir(files: u64) -> PathBuf {
    tree_root(files).join("data")
}

/// What the marker file of a complete tree holds.
fn marker_text(files: u64, bytes: u64) -> String {
    format!(
        "spychro benchmark suite, files workload tree\nlayout {LAYOUT_VERSION}\nseed {SEED:#x}\n\
         files {files}\nbytes {bytes}\n"
    )
}

/// Whether the tree at `root` is complete and made with these parameters.
fn is_current(root: &Path, entries: &[Entry], marker: &str) -> bool {
    if std::fs::read_to_string(root.join("params")).ok().as_deref() != Some(marker) {
        return false;
    }
    let data = root.join("data");
    entries.iter().all(|e| {
        std::fs::metadata(data.join(&e.rel)).is_ok_and(|m| m.is_file() && m.len() == e.len)
    })
}

/// Writes the tree in a directory of its own beside `root`, then moves it into place (so an
/// interrupted run leaves no half tree at `root`).
fn make(root: &Path, entries: &[Entry], marker: &str) -> Result<(), String> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    let tmp = root.with_extension(format!("tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    let data = tmp.join("data");
    for (i, e) in entries.iter().enumerate() {
        let path = data.join(&e.rel);
        let dir = path.parent().expect("a file's path has a parent");
        std::fs::create_dir_all(dir).map_err(|err| io(dir, err))?;
        let mut f = std::fs::File::create(&path).map_err(|err| io(&path, err))?;
        f.write_all(&contents(i as u64, e.len))
            .map_err(|err| io(&path, err))?;
    }
    let params = tmp.join("params");
    std::fs::write(&params, marker).map_err(|e| io(&params, e))?;
    if root.exists() {
        std::fs::remove_dir_all(root).map_err(|e| io(root, e))?;
    }
    std::fs::rename(&tmp, root).map_err(|e| io(root, e))
}

/// Every file under `dir`, as path strings, sorted (byte order).
fn list(dir: &Path) -> Result<Vec<String>, String> {
    fn walk(dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
        let io = |e: std::io::Error| format!("{}: {e}", dir.display());
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let path = entry.path();
            if entry.file_type().map_err(io)?.is_dir() {
                walk(&path, out)?;
            } else {
                let s = path
                    .into_os_string()
                    .into_string()
                    .map_err(|p| format!("{}: not UTF-8", p.display()))?;
                out.push(s);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort_unstable();
    Ok(out)
}

/// The child's inputs, gathered before its clock starts: every path of the tree of `files`
/// files, sorted.
pub fn gather(files: u64) -> Result<Vec<String>, String> {
    let dir = data_dir(files);
    let paths = list(&dir)?;
    if paths.len() as u64 != files {
        return Err(format!(
            "{} holds {} files where {files} were expected",
            dir.display(),
            paths.len()
        ));
    }
    Ok(paths)
}

/// The timed part of a child's run: every path's digest, in order, on `peer`.
pub fn run(peer: &str, processes: usize, paths: Vec<String>) -> Result<Vec<u64>, String> {
    match peer {
        "spychro" => Job::new(jobs::hash_file, paths)
            .processes(processes)
            .run_multi_processed()
            .map_err(|e| e.to_string()),
        // A pool per run, like every other peer.
        "rayon" => rayon::ThreadPoolBuilder::new()
            .num_threads(processes)
            .build()
            .map_err(|e| e.to_string())?
            .install(|| paths.par_iter().map(|p| digest_file(p)).collect()),
        other => Err(format!(
            "{other} has no files run (spychro, rayon and Python only)"
        )),
    }
}

/// The tree the parent prepared, and the checksum a correct run gives.
pub struct Tree {
    pub files: u64,
    pub bytes: u64,
    pub checksum: u64,
    /// How long making the tree took; `None` when an existing one was reused.
    made_s: Option<f64>,
    /// How long reading and hashing every file once (to warm the cache) took.
    warm_s: f64,
}

/// The parent's step before any timed run: makes the tree of `files` files (or reuses it),
/// then reads and hashes every file once, which warms the page cache for every peer and gives
/// the checksum that every run's outputs must have.
pub fn prepare(files: u64) -> Result<Tree, String> {
    let root = tree_root(files);
    let entries = layout(files);
    let bytes = entries.iter().map(|e| e.len).sum();
    let marker = marker_text(files, bytes);
    let made_s = if is_current(&root, &entries, &marker) {
        None
    } else {
        let t = Instant::now();
        make(&root, &entries, &marker)?;
        Some(t.elapsed().as_secs_f64())
    };
    let t = Instant::now();
    let digests = gather(files)?
        .iter()
        .map(|p| digest_file(p))
        .collect::<Result<Vec<u64>, String>>()?;
    Ok(Tree {
        files,
        bytes,
        checksum: super::weighted(&digests),
        made_s,
        warm_s: t.elapsed().as_secs_f64(),
    })
}

impl Tree {
    fn mib(&self) -> f64 {
        self.bytes as f64 / MIB as f64
    }

    /// The note about the tree: where it is, its size, whether it was made, the warm-up.
    pub fn note(&self) -> String {
        let made = match self.made_s {
            Some(s) => format!("made in {s:.2} s"),
            None => "reused".into(),
        };
        format!(
            "files: a tree of {} files, {:.1} MiB, in {} ({made}); the suite read and hashed \
             every file once ({:.2} s) before the timed runs, so they read from a warm page cache",
            self.files,
            self.mib(),
            data_dir(self.files).display(),
            self.warm_s,
        )
    }

    /// The note about one peer: bytes hashed per second at its median wall time.
    pub fn rate_note(&self, label: &str, wall_s: f64) -> String {
        format!(
            "files: {label} hashes {:.0} MiB/s ({:.0} files/s)",
            self.mib() / wall_s,
            self.files as f64 / wall_s
        )
    }
}
