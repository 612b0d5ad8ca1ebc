//! The timing harness, the machine description, tables, and small helpers
//! (a deterministic RNG, CPU pinning, RSS).

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long to run: `--quick` is a smoke run, the default a real one.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub quick: bool,
}

impl Budget {
    fn warmup(self) -> Duration {
        Duration::from_millis(if self.quick { 4 } else { 40 })
    }
    fn sample(self) -> Duration {
        Duration::from_millis(if self.quick { 4 } else { 20 })
    }
    fn samples(self) -> usize {
        if self.quick {
            3
        } else {
            7
        }
    }
}

/// The CPU time this thread has used. The in-memory benchmarks are timed
/// with it rather than the wall clock: on a shared machine, time spent
/// preempted by other processes is not charged to the code under test
/// (their cache pollution still is).
pub fn thread_cpu_time() -> Duration {
    // SAFETY: clock_gettime writes a timespec we own.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Times several passes (a pass is one unit of work, for example decoding
/// every frame of an input once). Each is warmed up; then samples of
/// enough passes to take a few milliseconds are taken in turns (A B C,
/// A B C, ...), so that a change in the machine's load falls on all of
/// them alike. Returns the median thread CPU time per pass of each.
pub fn time_interleaved(budget: Budget, passes: &mut [&mut dyn FnMut() -> usize]) -> Vec<Duration> {
    let reps: Vec<u32> = passes
        .iter_mut()
        .map(|pass| {
            let start = thread_cpu_time();
            let wall = Instant::now();
            let mut warm = 0u32;
            while warm < 2 || thread_cpu_time() - start < budget.warmup() {
                black_box(pass());
                warm += 1;
                if wall.elapsed() > 20 * budget.warmup() && warm >= 2 {
                    break;
                }
            }
            let per_pass = (thread_cpu_time() - start) / warm;
            (budget.sample().as_nanos() / per_pass.as_nanos().max(1)).clamp(1, 1 << 24) as u32
        })
        .collect();
    let mut samples = vec![Vec::new(); passes.len()];
    for _ in 0..budget.samples() {
        for (i, pass) in passes.iter_mut().enumerate() {
            let t = thread_cpu_time();
            for _ in 0..reps[i] {
                black_box(pass());
            }
            samples[i].push((thread_cpu_time() - t).as_secs_f64() / f64::from(reps[i]));
        }
    }
    samples
        .iter_mut()
        .map(|s| Duration::from_secs_f64(median(s)))
        .collect()
}

pub fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (false, false) => a.total_cmp(b),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    });
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// xorshift64*: deterministic test data without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

// ----- the machine -----

pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU")
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut features = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            features.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            features.push("avx512f");
        }
    }
    format!(
        "{model}, {cores} cores, {:.0} GiB RAM, Linux {}, SIMD: {}; rustc target features: baseline x86-64 (no target-cpu=native)",
        mem_kb as f64 / (1024.0 * 1024.0),
        kernel.trim(),
        if features.is_empty() { "none detected".to_string() } else { features.join(" ") },
    )
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ----- processes -----

/// Pins the calling thread to the given CPUs (`None`: all of them).
pub fn pin_current_thread(cpus: Option<&[usize]>) {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it; the call
    // only changes this thread's affinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let online = libc::sysconf(libc::_SC_NPROCESSORS_ONLN).max(1) as usize;
        let all: Vec<usize> = (0..online).collect();
        for &cpu in cpus.unwrap_or(&all) {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Raises the open-file limit to the hard limit, for 10,000 connections.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

/// VmRSS of a process, in KiB (what /proc calls kB).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Packets the kernel dropped because a CPU's input backlog was full
/// (all CPUs, /proc/net/softnet_stat). On loopback a drop costs a
/// retransmission timeout (200 ms or more), which then dominates a
/// throughput figure.
pub fn softnet_dropped() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        .sum()
}

// ----- tables -----

/// A plain-text table with aligned columns (first column left, the rest right).
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.header.len(), "row width");
        self.rows.push(cells);
    }
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = w - cell.chars().count();
                if i == 0 {
                    s.push_str(cell);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str("  ");
                    s.push_str(&" ".repeat(pad));
                    s.push_str(cell);
                }
            }
            s.trim_end().to_string()
        };
        let mut out = String::new();
        let _ = writeln!(out, "\n{}", self.title);
        let _ = writeln!(out, "{}", line(&self.header));
        let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        let _ = writeln!(out, "{}", "-".repeat(total));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
        for note in &self.notes {
            let _ = writeln!(out, "  {note}");
        }
        out
    }
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

// ----- formatting -----

pub fn size_name(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// GB/s (10^9 bytes per second) for `bytes` in `time`.
pub fn gbps(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e9
}

pub fn fmt_gbps(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn fmt_ratio(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

pub fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

pub fn fmt_us(ns: f64) -> String {
    if !ns.is_finite() {
        return "-".into();
    }
    let us = ns / 1e3;
    if us >= 100.0 {
        format!("{us:.0}")
    } else if us >= 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.2}")
    }
}

/// CPU time of a process so far (user + system), from /proc.
pub fn cpu_time(pid: u32) -> std::time::Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    std::time::Duration::from_millis(cpu_ticks(&stat) * 1000 / hz)
}

/// utime + stime, in clock ticks, from a `/proc/PID/stat` line: fields 14
/// and 15, counted by position after the name (which may hold spaces).
/// Every field counts, the state letter and a `-1` tpgid included (a
/// process with no terminal has one, and skipping it counted stime and
/// cutime instead).
fn cpu_ticks(stat: &str) -> u64 {
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    // After the name: state is field 3, so utime (14) is the 12th.
    let mut fields = after.split_whitespace().skip(11);
    let mut next = || {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    next() + next()
}

#[cfg(test)]
mod tests {
    use super::cpu_ticks;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_whatever_the_name_and_terminal() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt
        // cminflt majflt cmajflt utime stime cutime cstime ...
        let rest = "4194304 123 0 0 0 700 45 9 9 20 0 1";
        for (head, tty) in [("7 (bench)", "0 -1"), ("7 (a b) c)", "34816 2900")] {
            let line = format!("{head} R 1 7 7 {tty} {rest}");
            assert_eq!(cpu_ticks(&line), 745, "{line}");
        }
    }
}
