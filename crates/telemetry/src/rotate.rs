//! Access-log files: ALB's names, wall-clock rotation and optional gzip, for the writer thread.
//!
//! A file is named `{account}_elasticloadbalancing_{region}_app.{lb-name}.{lb-id}_{end}_{node}_{random}.log`
//! (reference/ALB.md §1), with account `000000000000` and region `local` unless set, `{end}` the end of the file's
//! rotation period as `YYYYMMDDTHHMMZ`, and `{random}` 8 lowercase alphanumerics. Periods are aligned on the
//! wall clock (every 5 minutes by default: :00, :05, ...), files are written flat into the configured
//! directory (not ALB's `AWSLogs/...` S3 prefix), and a period with no records leaves no file.
//!
//! Plain files are written under their final name, flushed whenever the writer runs out of lines, so `tail -f` works.
//! Gzip files are written as `NAME.log.gz.part` and renamed to `NAME.log.gz` when complete, because a
//! half-written gzip stream is not readable and log shippers pick up files by name.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::record::{ACCOUNT, REGION, fnv1a};
use crate::timefmt::file_stamp;

/// The parts of an access-log file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameParts {
    pub account: String,
    pub region: String,
    /// The load balancer's name (letters, digits, `-`; anything else becomes `-`).
    pub lb_name: String,
    /// The load balancer's id: 16 hex digits.
    pub lb_id: String,
    /// This instance's address or name (the "node" of ALB's name; `:` becomes `-`).
    pub node: String,
    /// Written before the name: empty for access logs, `conn_log.` for ALB's connection logs.
    pub prefix: &'static str,
}

impl NameParts {
    /// Names for load balancer `lb_name` on instance `node`, with the synthetic account and region and an id
    /// derived from the name (so every instance of one fleet writes the same `app.{name}.{id}`).
    pub fn new(lb_name: &str, node: &str) -> Self {
        Self {
            account: ACCOUNT.to_owned(),
            region: REGION.to_owned(),
            lb_name: lb_name.to_owned(),
            lb_id: format!("{:016x}", fnv1a(lb_name)),
            node: node.to_owned(),
            prefix: "",
        }
    }

    /// The file name (without `.gz`) for a period ending at `end`.
    pub fn file_name(&self, end: SystemTime, random: &str) -> String {
        let clean = |s: &str, dot: bool| -> String {
            let s: String = s
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' || (dot && c == '.') { c } else { '-' })
                .collect();
            if s.is_empty() { "-".to_owned() } else { s }
        };
        format!(
            "{}{}_elasticloadbalancing_{}_app.{}.{}_{}_{}_{}.log",
            self.prefix,
            clean(&self.account, false),
            clean(&self.region, false),
            clean(&self.lb_name, false),
            clean(&self.lb_id, false),
            file_stamp(end),
            clean(&self.node, true),
            random
        )
    }
}

/// The end of the rotation period containing `now`: the next multiple of `period` since the epoch.
pub(crate) fn period_end(now: SystemTime, period: Duration) -> SystemTime {
    let p = period.as_nanos().max(1_000_000);
    let t = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let end = (t / p + 1).saturating_mul(p);
    let secs = u64::try_from(end / 1_000_000_000).unwrap_or(u64::MAX / 2);
    UNIX_EPOCH + Duration::new(secs, (end % 1_000_000_000) as u32)
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(BufWriter<GzEncoder<File>>),
}

/// One open access-log file.
pub(crate) struct LogFile {
    sink: Sink,
    /// Where it is being written.
    path: PathBuf,
    /// Its final name (differs from `path` for gzip while open).
    final_path: PathBuf,
    pub(crate) end: SystemTime,
}

impl LogFile {
    /// Create a new file for the period ending at `end`, never overwriting one.
    pub(crate) fn create(dir: &Path, names: &NameParts, end: SystemTime, gzip: bool) -> io::Result<Self> {
        let mut tries = 0;
        loop {
            let random: String =
                rand::rng().sample_iter(&Alphanumeric).take(8).map(|b| char::from(b).to_ascii_lowercase()).collect();
            let name = names.file_name(end, &random);
            let final_name = if gzip { format!("{name}.gz") } else { name };
            let final_path = dir.join(&final_name);
            let path = if gzip { dir.join(format!("{final_name}.part")) } else { final_path.clone() };
            tries += 1;
            if gzip && final_path.exists() && tries < 16 {
                continue;
            }
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let sink = if gzip {
                        Sink::Gzip(BufWriter::with_capacity(64 * 1024, GzEncoder::new(file, Compression::default())))
                    } else {
                        Sink::Plain(BufWriter::with_capacity(64 * 1024, file))
                    };
                    return Ok(Self { sink, path, final_path, end });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 16 => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes whole lines, each ending with its newline.
    pub(crate) fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        let w: &mut dyn Write = match &mut self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
        };
        w.write_all(lines)
    }

    /// Push buffered lines to the OS where that is cheap: plain files only (a gzip sync flush would cost
    /// compression ratio on every idle moment).
    pub(crate) fn flush_idle(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(_) => Ok(()),
        }
    }

    /// Flush, finish the gzip stream, sync and give the file its final name.
    pub(crate) fn finish(self) -> io::Result<PathBuf> {
        let file = match self.sink {
            Sink::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            Sink::Gzip(w) => w.into_inner().map_err(|e| e.into_error())?.finish()?,
        };
        file.sync_data()?;
        drop(file);
        if self.path != self.final_path {
            std::fs::rename(&self.path, &self.final_path)?;
        }
        Ok(self.final_path)
    }

    /// After a failed write or flush, drops what the buffer still holds (the writer counted it lost) and keeps
    /// the file for the next lines, so a full disk does not become a new file per failed batch. Plain files
    /// only: a gzip stream that failed mid-member cannot be continued (returns false: start a new file).
    pub(crate) fn discard_buffered(&mut self) -> bool {
        let Sink::Plain(w) = &mut self.sink else { return false };
        // A second descriptor on the same open file (same offset): the old writer and its buffer go, unwritten.
        let Ok(file) = w.get_ref().try_clone() else { return false };
        let old = std::mem::replace(w, BufWriter::with_capacity(64 * 1024, file));
        drop(old.into_parts());
        true
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alb_file_name() {
        let n = NameParts::new("my_lb", "10.0.0.1");
        let end = UNIX_EPOCH + Duration::from_secs(1_392_507_600);
        let name = n.file_name(end, "abcd1234");
        assert_eq!(
            name,
            format!(
                "000000000000_elasticloadbalancing_local_app.my-lb.{}_20140215T2340Z_10.0.0.1_abcd1234.log",
                n.lb_id
            )
        );
        assert_eq!(n.lb_id.len(), 16);
        assert_eq!(NameParts::new("x", "::1").file_name(end, "r").split('_').nth(5), Some("--1"));
    }

    #[test]
    fn periods_align_on_the_wall_clock() {
        let five = Duration::from_secs(300);
        let t = UNIX_EPOCH + Duration::from_secs(1_392_507_600 - 1);
        assert_eq!(period_end(t, five), UNIX_EPOCH + Duration::from_secs(1_392_507_600));
        let on = UNIX_EPOCH + Duration::from_secs(1_392_507_600);
        assert_eq!(period_end(on, five), UNIX_EPOCH + Duration::from_secs(1_392_507_900));
        let ms = Duration::from_millis(50);
        let t = UNIX_EPOCH + Duration::from_millis(1_020);
        assert_eq!(period_end(t, ms), UNIX_EPOCH + Duration::from_millis(1_050));
    }
}
