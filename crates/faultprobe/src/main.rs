//! The fault probe's command line: `fault_probe [--short | --full] [--seed N] [--events N]
//! [--writers N] [--keep-logs]`. Prints the seed, the fault schedule, progress and the counts;
//! exits 0 when every promise held, 1 on any loss, duplicate, misorder or other finding, and 2
//! when the probe itself could not run. See `lib.rs` for what it does.

use std::process::ExitCode;

use faultprobe::schedule::Mode;

fn usage() -> &'static str {
    "usage: fault_probe [--short | --full] [--seed N] [--events N] [--writers N] [--keep-logs]"
}

fn parse() -> Result<faultprobe::ProbeOptions, String> {
    let mut mode = Mode::short();
    let mut seed = None;
    let mut events = None;
    let mut writers = None;
    let mut keep_logs = false;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            arguments
                .next()
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| format!("{name} takes a number; {}", usage()))
        };
        match argument.as_str() {
            "--short" => mode = Mode::short(),
            "--full" => mode = Mode::full(),
            "--seed" => seed = Some(number("--seed")?),
            "--events" => events = Some(number("--events")?),
            "--writers" => writers = Some(number("--writers")?),
            "--keep-logs" => keep_logs = true,
            other => return Err(format!("unknown argument {other}; {}", usage())),
        }
    }
    if let Some(events) = events {
        mode.events_min = events;
    }
    if let Some(writers) = writers {
        mode.writers = usize::try_from(writers.max(1)).map_err(|error| error.to_string())?;
    }
    // Without a seed, one from the clock; printed first, so the run can be repeated.
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64)
    });
    Ok(faultprobe::ProbeOptions {
        seed,
        mode,
        binaries: faultprobe::processes::binaries_directory().map_err(|error| error.to_string())?,
        keep_logs,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_logging_with_default("fault_probe", "warn");
    let options = match parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match faultprobe::run(options).await {
        Ok(report) => {
            print!("{}", report.render());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("fault probe could not run: {error:#}");
            ExitCode::from(2)
        }
    }
}
