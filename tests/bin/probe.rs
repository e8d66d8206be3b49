//! A small program for the integration tests: a spychro binary built from different code than
//! the tests, and a parent whose workers the tests can observe from outside.
//!
//! ```text
//! spychro-probe run N PROCESSES   run `square` over 0..N multi-processed, print the sum
//! ```

#[spychro::job]
fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["run", n, p] => {
            let n: u64 = n.parse().expect("N");
            let p: usize = p.parse().expect("PROCESSES");
            let out = spychro::Job::new(square, 0..n)
                .processes(p)
                .run_multi_processed()
                .expect("the job runs");
            println!("{}", out.iter().sum::<u64>());
        }
        _ => {
            eprintln!("usage: spychro-probe run N PROCESSES");
            std::process::exit(2);
        }
    }
}
