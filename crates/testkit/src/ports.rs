//! Ports for the servers that tests and the fault probe start as processes of their own
//! (nats-server nodes, a private PostgreSQL, the probe's service processes), which must be told
//! a port before they bind it.
//!
//! A port the kernel hands out for `127.0.0.1:0` comes from the ephemeral range, the same range
//! every outgoing connection on the machine takes its local port from. Between choosing such a
//! port and the server binding it (or re-binding it after a `kill -9` in the fault probe), any
//! client connection of a parallel test may take it, and the server dies on bind. So the ports
//! here come from below the ephemeral range, where no outgoing connection ever lands, and each is
//! reserved with a lock file so that two test processes choosing at the same moment never get the
//! same one.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The lowest port handed out: above the well-known and registered ports the machine's own
/// services use (PostgreSQL 5432, NATS 4222 and 4250, RabbitMQ 5672, metrics 9650, ...).
const PORTS_FROM: u16 = 20_000;

/// How long a reservation holds: longer than any test or fault-probe run keeps a server.
const RESERVATION_HOLD: Duration = Duration::from_secs(6 * 60 * 60);

/// Where reservations are kept, shared by every test process on the machine.
fn reservations_directory() -> PathBuf {
    std::env::temp_dir().join("ips-test-ports")
}

/// The first port of the kernel's ephemeral range (`net.ipv4.ip_local_port_range`).
fn ephemeral_range_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Reserves `port` for this caller unless another process reserved it within the hold.
fn reserve(port: u16) -> bool {
    let path = reservations_directory().join(port.to_string());
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(_) => true,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let stale = std::fs::metadata(&path)
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| SystemTime::now().duration_since(modified).ok())
                .is_some_and(|age| age > RESERVATION_HOLD);
            // A stale reservation is taken over by renewing its time, which two takers may both
            // do; the bind check below still refuses a port that is in use.
            stale
                && std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .is_ok()
        }
        Err(_) => false,
    }
}

/// `count` distinct loopback ports, free now, below the ephemeral range and reserved for the
/// caller, so neither an outgoing connection nor another test takes one before (or between
/// restarts of) the server it is meant for.
pub fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    std::fs::create_dir_all(reservations_directory())?;
    let range_end = ephemeral_range_start();
    anyhow::ensure!(
        range_end > PORTS_FROM,
        "the ephemeral port range starts at {range_end}, leaving no ports from {PORTS_FROM} below it"
    );
    let span = u32::from(range_end - PORTS_FROM);
    // A random place to start, so parallel callers do not all contend for the first ports.
    let start = (uuid::Uuid::new_v4().as_u128() % u128::from(span)) as u32;
    let mut ports = Vec::with_capacity(count);
    // Held until all are chosen, so the chosen ports differ from each other.
    let mut listeners = Vec::with_capacity(count);
    for offset in 0..span {
        if ports.len() == count {
            break;
        }
        let port = PORTS_FROM + ((start + offset) % span) as u16;
        let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) else {
            continue;
        };
        if reserve(port) {
            ports.push(port);
            listeners.push(listener);
        }
    }
    anyhow::ensure!(
        ports.len() == count,
        "only {} of {count} ports free and unreserved between {PORTS_FROM} and {range_end}",
        ports.len()
    );
    Ok(ports)
}
