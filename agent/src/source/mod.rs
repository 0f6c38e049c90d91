//! The followed sources. Each delivers complete lines in order, marks the
//! lines it re-reads after a restart (`replay`: their results were already
//! written), and describes where it stands as a checkpoint that is only
//! saved after the results of the lines before it reached the sink.

pub mod file;
pub mod journald;

/// One line handed to the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The line, without its newline (invalid UTF-8 replaced).
    pub text: &'a str,
    /// The line was already processed before a restart: feed it to rebuild
    /// the analyzer's state, but do not report what it produces.
    pub replay: bool,
}

/// Size of one glibc `struct utmp` record (x86_64, aarch64 and armv7).
pub const UTMP_RECORD: usize = 384;

/// Reads a whole text input line by line (scan, stdin): invalid UTF-8
/// replaced, `\r\n` accepted, lines cut at [`file::MAX_LINE`], a last line
/// without newline included.
pub fn read_lines(reader: &mut dyn std::io::BufRead, f: &mut dyn FnMut(Line<'_>)) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = &line[..line.len().min(file::MAX_LINE)];
        f(Line { text: &String::from_utf8_lossy(line), replay: false });
    }
}
