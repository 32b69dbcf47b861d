//! `cargo xtask fuzz [seconds]`: runs every fuzz target (cargo-fuzz,
//! libFuzzer) for a bounded time, 60 s each by default. Needs a nightly
//! toolchain and cargo-fuzz, both installed here when missing. A crash stops
//! the run with libFuzzer's report; the input that crashed is kept under
//! `fuzz/artifacts/<target>/`, the corpus under `fuzz/corpus/`.

use std::path::Path;
use std::process::{Command, Stdio};

const TARGETS: [&str; 3] = ["calendar", "rightsizing", "letters"];

type Error = Box<dyn std::error::Error>;

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(program: &str, args: &[&str]) -> Result<(), Error> {
    let status = Command::new(program).args(args).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")).into())
    }
}

pub fn main(args: Vec<String>) -> Result<(), Error> {
    let seconds: u64 = match args.as_slice() {
        [] => 60,
        [s] => s
            .parse()
            .map_err(|_| format!("seconds must be a number, not {s:?}"))?,
        _ => return Err("usage: cargo xtask fuzz [seconds]".into()),
    };
    if !succeeds("cargo", &["+nightly", "--version"]) {
        run(
            "rustup",
            &["toolchain", "install", "nightly", "--profile", "minimal"],
        )?;
    }
    if !succeeds("cargo", &["+nightly", "fuzz", "--version"]) {
        run("cargo", &["install", "--locked", "cargo-fuzz"])?;
    }
    let fuzz = Path::new(govcloud_testenv::SOURCE_TREE).join("fuzz");
    std::fs::create_dir_all(fuzz.join("logs"))?;
    for target in TARGETS {
        println!("== {target} for {seconds} s");
        let log = fuzz.join(format!("logs/{target}.log"));
        let file = std::fs::File::create(&log)?;
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .args(["-timeout=10", "-rss_limit_mb=2048"])
            .current_dir(&fuzz)
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()?;
        let text = std::fs::read_to_string(&log)?;
        let lines: Vec<&str> = text.lines().collect();
        if !status.success() {
            for line in &lines[lines.len().saturating_sub(40)..] {
                println!("{line}");
            }
            return Err(format!("{target} failed; its log is {}", log.display()).into());
        }
        match lines
            .iter()
            .find(|l| l.starts_with("Done ") && l.contains(" runs"))
        {
            Some(done) => println!("{done}"),
            None => lines[lines.len().saturating_sub(3)..]
                .iter()
                .for_each(|l| println!("{l}")),
        }
    }
    Ok(())
}
