// A job returning `Result` may use `?`; an `Err` is reported as that item's failure.
use spychro::Job;

#[spychro::job]
fn parse(line: String) -> Result<u32, std::num::ParseIntError> {
    let n = line.trim().parse::<u32>()?;
    Ok(n * 2)
}

#[spychro::job]
fn parse_io(line: String) -> std::io::Result<u32> {
    line.parse::<u32>()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn main() {
    assert_eq!(parse(" 7 ".into()).unwrap(), 14);

    let lines = || ["1", "2", "x", "4"].map(String::from);
    let ok = Job::new(parse, ["1", "2"].map(String::from))
        .run_multi_processed()
        .unwrap();
    assert_eq!(ok, [2, 4]);

    let err = Job::new(parse, lines()).run_single_processed().unwrap_err();
    assert_eq!(err.item().unwrap().index(), 2);
    let err = Job::new(parse, lines())
        .processes(2)
        .run_multi_processed()
        .unwrap_err();
    let failure = err.item().unwrap();
    assert_eq!(failure.index(), 2);
    assert!(failure.message().contains("invalid digit"), "{}", failure.message());
    let err = Job::new(parse, lines()).run_multi_threaded().unwrap_err();
    assert_eq!(err.item().unwrap().index(), 2);

    let err = Job::new(parse_io, lines()).run_multi_processed().unwrap_err();
    assert_eq!(err.item().unwrap().index(), 2);
}
